#!/bin/sh
# Bounded JoinableQueue: the summary is deterministic (FIFO scheduling).
exec "${top_srcdir:-.}/test/run_demo.sh" producer_consumer
