#!/bin/sh
# make check's short stress run: a few seconds, the seed printed so a
# failure can be replayed with `test/stress SECONDS SEED`.  `make stress`
# is the long run (STRESS_SECONDS, default 20; STRESS_SEED to replay).
exec "${top_builddir:-.}/test/stress" "${STRESS_SECONDS:-3}" ${STRESS_SEED:-}
