#!/bin/sh
# The tutorial's four lines, in the tutorial's order.
exec "${top_srcdir:-.}/test/run_demo.sh" context_switch
