#!/bin/sh
# demo/greenlet_state prints exactly demo/greenlet_state.expected (the tutorial shows it).
exec "${top_srcdir:-.}/test/run_demo.sh" greenlet_state
