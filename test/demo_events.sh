#!/bin/sh
# demo/events prints exactly demo/events.expected (the tutorial shows it).
exec "${top_srcdir:-.}/test/run_demo.sh" events
