#!/bin/sh
# doc/tutorial.md: every code block is its demo's code, every file it
# names exists, every demo it names is built, every marked region is
# shown (doc/tutorial.sh check).
exec sh "${top_srcdir:-.}/doc/tutorial.sh" check \
    "${top_srcdir:-.}/doc/tutorial.md" "${top_srcdir:-.}" "${top_builddir:-.}"
