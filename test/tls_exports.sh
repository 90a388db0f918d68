#!/bin/sh
# Only green_tls_* symbols leave libgreen-tls.so.
exec sh "${top_srcdir:-.}/test/exports.sh" libgreen-tls green_tls_
