#!/bin/sh
# demo/groups_pools prints exactly demo/groups_pools.expected (the tutorial shows it).
exec "${top_srcdir:-.}/test/run_demo.sh" groups_pools
