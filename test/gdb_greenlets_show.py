# Run by test/gdb_greenlets.sh inside gdb, once test/gdb_greenlets_prog
# is stopped (live or from a core file): print `info greenlets`, then
# `greenlet bt` of each parked greenlet under a "=== bt NAME" header,
# then select one greenlet's frames and go back.
import re

import gdb

listing = gdb.execute("info greenlets", to_string=True)
print("=== info greenlets")
print(listing)
ids = {}
for line in listing.splitlines():
    m = re.match(r"^[ *>] +(\d+) +(\S+)", line)
    if m:
        ids[m.group(2)] = m.group(1)
for name in ("sleeper", "event-waiter", "pipe-reader", "joiner",
             "queue-getter"):
    print("=== bt %s" % name)
    if name in ids:
        print(gdb.execute("greenlet bt " + ids[name], to_string=True))
if "pipe-reader" in ids:
    print("=== select pipe-reader")
    print(gdb.execute("greenlet " + ids["pipe-reader"], to_string=True))
    print(gdb.execute("bt", to_string=True))
    print(gdb.execute("info frame", to_string=True))
    print(gdb.execute("greenlet off", to_string=True))
print("=== after greenlet off")
print(gdb.execute("bt", to_string=True))
print("=== end")
