#!/bin/sh
# demo/timeouts prints exactly demo/timeouts.expected (the tutorial shows it).
exec "${top_srcdir:-.}/test/run_demo.sh" timeouts
