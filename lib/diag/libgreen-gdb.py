# libgreen's gdb extension: see every greenlet, not only the running one.
#
#   info greenlets          every greenlet of every thread's hub: id, name,
#                           state, what it waits on, how long, stack size
#                           and use (the columns of green_dump)
#   greenlet bt ID [ARGS]   backtrace of greenlet ID (ARGS go to `bt`)
#   greenlet ID             select greenlet ID's frames (`up`, `frame N`,
#                           `info locals`, `print` work on them)
#   greenlet off            back to the thread's own frames
#   greenlet                which greenlet is selected
#
# make install puts this file where gdb auto-loads it for any program
# linked with libgreen ($(datadir)/gdb/auto-load/$(libdir)/libgreen.so.
# <version>-gdb.py); elsewhere, `source` it.  It needs libgreen's debug
# information (the default -g build) and works on a live process and on a
# core file.  x86-64 only (the registers of the saved contexts).
#
# How a parked greenlet's frames are shown: its registers sit in its
# saved context (a ucontext_t, or the stack the asm switch pushed them
# on).  Registers cannot be written into a core file, so instead of
# setting $rsp/$rip an unwinder makes the greenlet's saved registers the
# caller of the thread's innermost frame; a frame filter hides that one
# frame from `bt`.  `greenlet off` removes both.

import time

import gdb
import gdb.unwinder

STATES = ("new", "runnable", "running", "waiting", "done")
PAGE = 4096  # the guard page below each stack (x86-64 Linux)

# struct green__ctx.uc.uc_mcontext.gregs indexes (<sys/ucontext.h>).
UC_REGS = {"r12": 4, "r13": 5, "r14": 6, "r15": 7, "rbp": 10,
           "rbx": 11, "rsp": 15, "rip": 16}
# What context_x86_64.S pushes below the saved sp, in 8-byte slots:
# MXCSR/x87 control word, r15, r14, r13, r12, rbx, rbp, return address.
ASM_SLOTS = {"r15": 1, "r14": 2, "r13": 3, "r12": 4, "rbx": 5, "rbp": 6,
             "rip": 7}
ASM_FRAME = 8 * 8


def u64(value):
    return int(value.cast(gdb.lookup_type("unsigned long")))


def read_u64(addr):
    mem = gdb.selected_inferior().read_memory(addr, 8)
    return int.from_bytes(bytes(mem), "little")


def read_double(addr):
    import struct
    mem = gdb.selected_inferior().read_memory(addr, 8)
    return struct.unpack("<d", bytes(mem))[0]


def field_offset(type_name, field):
    for f in gdb.lookup_type(type_name).fields():
        if f.name == field:
            return f.bitpos // 8
    raise gdb.GdbError("libgreen: no field %s in %s" % (field, type_name))


class Greenlet:
    """One struct green, read from the inferior."""

    def __init__(self, g, thread, hub):
        self.g = g
        self.thread = thread
        self.hub = hub
        self.id = int(g["id"])
        name = g["name"].string(length=32, errors="replace").split("\0")[0]
        self.name = name or "greenlet-%d" % self.id
        state = int(g["state"])
        self.state = STATES[state] if 0 <= state < len(STATES) else "?"
        if self.state == "new" and int(g["scheduled"]):
            self.state = "later"
        self.running = u64(hub["current"]) == u64(g.address)
        if u64(g.address) == u64(hub["hubg"].address):
            # The hub greenlet's state field is not kept up to date.
            self.state = "running" if self.running else "idle"
        self.entered = int(g["entered"]) != 0

    def wait(self):
        if self.state != "waiting":
            return "-"
        what = self.g["wait_what"]
        text = what.string() if u64(what) else "?"
        fd = int(self.g["wait_fd"])
        return "%s on fd %d" % (text, fd) if fd >= 0 else text

    def waited(self, now):
        if self.state != "waiting" or now is None:
            return "-"
        return "%.3fs" % max(0.0, now - float(self.g["wait_since"]))

    def saved_registers(self):
        """The registers of the switched-out context, as integers."""
        ctx = self.g["ctx"]
        names = [f.name for f in ctx.type.fields()]
        if "uc" in names:
            gregs = ctx["uc"]["uc_mcontext"]["gregs"]
            return {r: int(gregs[i]) & (2**64 - 1)
                    for r, i in UC_REGS.items()}
        sp = u64(ctx["sp"])
        regs = {r: read_u64(sp + 8 * i) for r, i in ASM_SLOTS.items()}
        regs["rsp"] = sp + ASM_FRAME
        return regs

    def stack(self):
        """(size, used) in bytes, None for the thread's own stack."""
        st = self.g["stack"]
        if not u64(st["map"]):
            return None
        top = u64(st["map"]) + int(st["map_size"])
        size = int(st["map_size"]) - PAGE
        if self.running:
            with Selection.suspended():
                sp = u64(self.thread_sp())
        else:
            sp = self.saved_registers()["rsp"]
        return size, top - sp if top - size <= sp <= top else None

    def thread_sp(self):
        cur = gdb.selected_thread()
        try:
            self.thread.switch()
            return gdb.newest_frame().read_register("rsp")
        finally:
            cur.switch()


def clock_now(hub):
    """The time to measure waits against (wait_since is the loop's cached
    ev_now, wall-clock based): the clock itself on a live process; on a
    core file, the hub loop's time at its last iteration (libev's
    ev_rt_now, the first double of struct ev_loop)."""
    if not is_core():
        return time.time()
    try:
        return read_double(u64(hub["loop"]))
    except gdb.error:
        return None


def is_core():
    inf = gdb.selected_inferior()
    conn = getattr(inf, "connection", None)
    if conn is not None:
        return conn.type == "core"
    return "core" in gdb.execute("info target", to_string=True).lower()


def hubs():
    """[(thread, hub value)] for every thread of the inferior that has a
    hub: each thread's `green__tls_hub` (lib/core/hub.c; hidden, so
    gdb may list it as static)."""
    sym = (gdb.lookup_global_symbol("green__tls_hub") or
           gdb.lookup_static_symbol("green__tls_hub"))
    if sym is None:
        raise gdb.GdbError("libgreen: no green__tls_hub symbol (is libgreen "
                           "loaded, with debug information?)")
    out = []
    cur = gdb.selected_thread()
    with Selection.suspended():
        try:
            for t in sorted(gdb.selected_inferior().threads(),
                            key=lambda t: t.num):
                t.switch()
                try:
                    hub = sym.value(gdb.newest_frame())
                except gdb.error:
                    continue
                if u64(hub):
                    out.append((t, hub.dereference()))
        finally:
            if cur is not None:
                cur.switch()
    return out


def greenlets_of(thread, hub):
    if not int(hub["embedded"]):
        yield Greenlet(hub["main"], thread, hub)
    yield Greenlet(hub["hubg"], thread, hub)
    head = hub["live"]
    off = field_offset("struct green", "all")
    gptr = gdb.lookup_type("struct green").pointer()
    node = head["next"]
    seen = 0
    while u64(node) != u64(head.address) and seen < 10000000:
        g = gdb.Value(u64(node) - off).cast(gptr).dereference()
        yield Greenlet(g, thread, hub)
        node = node["next"]
        seen += 1


def all_greenlets():
    for thread, hub in hubs():
        for g in greenlets_of(thread, hub):
            yield g


def find(arg):
    try:
        gid = int(arg, 0)
    except ValueError:
        raise gdb.GdbError("usage: greenlet [bt] ID (a number from "
                           "`info greenlets`)")
    for g in all_greenlets():
        if g.id == gid:
            return g
    raise gdb.GdbError("libgreen: no greenlet %d" % gid)


def kib(n):
    return "?" if n is None else "%.1fK" % (n / 1024)


ROW = "%6s %-20s %-8s %-30s %9s %6s %7s"


class InfoGreenlets(gdb.Command):
    """List every greenlet of every thread's hub.
Columns as green_dump(3): id, name, state, what it waits on, how long,
stack size and bytes in use.  `*` marks each thread's running greenlet,
`>` the one `greenlet ID` selected."""

    def __init__(self):
        super().__init__("info greenlets", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        found = hubs()
        if not found:
            print("No libgreen hub in any thread.")
            return
        core = is_core()
        for thread, hub in found:
            now = clock_now(hub)
            print("Thread %d (%s): hub %s, %d alive%s" % (
                thread.num, thread.name or "?", hub.address,
                int(hub["alive"]),
                ", waits up to the loop's last iteration" if core else ""))
            print("  " + ROW % ("id", "name", "state", "waiting on",
                                "waited", "stack", "used"))
            for g in greenlets_of(thread, hub):
                st = g.stack()
                mark = ">" if Selection.selected_id == g.id else \
                    "*" if g.running else " "
                print(mark + " " + ROW % (
                    g.id, g.name, g.state, g.wait(), g.waited(now),
                    "-" if st is None else "%dK" % (st[0] // 1024),
                    "-" if st is None else kib(st[1])))


class FrameId:
    def __init__(self, sp, pc):
        self.sp = sp
        self.pc = pc


class GreenletUnwinder(gdb.unwinder.Unwinder):
    """Makes the selected greenlet's saved registers the caller of the
    innermost frame of its thread."""

    def __init__(self):
        super().__init__("libgreen")
        self.regs = None     # {name: int} of the selected greenlet
        self.thread = None   # its thread's global number
        self.anchor = None   # (sp, pc) of that thread's innermost frame

    def __call__(self, pending):
        if self.regs is None:
            return None
        t = gdb.selected_thread()
        if t is None or t.global_num != self.thread:
            return None
        sp = pending.read_register("rsp")
        pc = pending.read_register("rip")
        if (u64(sp), u64(pc)) != self.anchor:
            return None
        # The anchor frame's id claims the greenlet's stack pointer: gdb
        # stops a backtrace whose frames go toward the inner end of the
        # stack, and greenlet stacks lie below the thread's own.
        ulong = gdb.lookup_type("unsigned long")
        fake_sp = gdb.Value(self.regs["rsp"]).cast(sp.type)
        info = pending.create_unwind_info(FrameId(fake_sp, pc))
        for name, value in self.regs.items():
            info.add_saved_register(name, gdb.Value(value).cast(ulong))
        return info


class HideAnchor:
    """Frame filter: while a greenlet is selected, `bt` starts at its own
    frames, not at the thread's innermost frame that carries them."""

    def __init__(self):
        self.name = "libgreen"
        self.priority = 100
        self.enabled = True
        gdb.frame_filters[self.name] = self

    def filter(self, frames):
        if Selection.unwinder.regs is not None and \
                gdb.selected_thread().global_num == \
                Selection.unwinder.thread:
            next(frames, None)
        return frames


class Selection:
    """Which greenlet's frames gdb shows (at most one)."""
    unwinder = None
    selected_id = None

    @classmethod
    def install(cls):
        cls.unwinder = GreenletUnwinder()
        gdb.unwinder.register_unwinder(None, cls.unwinder, replace=True)
        HideAnchor()

    @classmethod
    def select(cls, g):
        cls.clear()
        g.thread.switch()
        if g.running:
            return "[greenlet %d (%s) is running: thread %d's own frames]" \
                % (g.id, g.name, g.thread.num)
        if not g.entered:
            raise gdb.GdbError("libgreen: greenlet %d has not started: "
                               "no frames yet" % g.id)
        if g.state == "done":
            raise gdb.GdbError("libgreen: greenlet %d is done" % g.id)
        regs = g.saved_registers()
        top = gdb.newest_frame()
        anchor = (u64(top.read_register("rsp")),
                  u64(top.read_register("rip")))
        u = cls.unwinder
        u.regs, u.thread, u.anchor = regs, g.thread.global_num, anchor
        cls.selected_id = g.id
        gdb.invalidate_cached_frames()
        gdb.newest_frame().older().select()
        return "[greenlet %d (%s), %s; `greenlet off` to leave]" % (
            g.id, g.name, g.wait() if g.state == "waiting" else g.state)

    @classmethod
    def clear(cls):
        u = cls.unwinder
        if u.regs is None:
            return False
        u.regs = u.thread = u.anchor = None
        cls.selected_id = None
        gdb.invalidate_cached_frames()
        return True

    @classmethod
    def suspended(cls):
        return _Suspended(cls)


class _Suspended:
    """Context manager: the thread's own frames for a while."""

    def __init__(self, sel):
        self.sel = sel

    def __enter__(self):
        u = self.sel.unwinder
        self.saved = (u.regs, u.thread, u.anchor, self.sel.selected_id)
        if u.regs is not None:
            u.regs = None
            gdb.invalidate_cached_frames()

    def __exit__(self, *exc):
        u = self.sel.unwinder
        u.regs, u.thread, u.anchor, self.sel.selected_id = self.saved
        if u.regs is not None:
            gdb.invalidate_cached_frames()
        return False


class GreenletCommand(gdb.Command):
    """Select a greenlet's frames: greenlet ID; greenlet off to go back.
greenlet bt ID [ARGS] prints its backtrace; greenlet alone says which one
is selected.  IDs are those of `info greenlets`."""

    def __init__(self):
        super().__init__("greenlet", gdb.COMMAND_STACK, prefix=True)

    def invoke(self, arg, from_tty):
        arg = arg.strip()
        if not arg:
            sid = Selection.selected_id
            print("[greenlet %d selected]" % sid if sid is not None
                  else "[no greenlet selected: the threads' own frames]")
        elif arg == "off":
            print("[back to the thread's own frames]" if Selection.clear()
                  else "[no greenlet was selected]")
        else:
            print(Selection.select(find(arg)))


class GreenletBt(gdb.Command):
    """Backtrace of a greenlet: greenlet bt ID [bt arguments].
Works for parked, runnable and running greenlets; the selection, thread
and frame are restored afterwards."""

    def __init__(self):
        super().__init__("greenlet bt", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        argv = arg.split(None, 1)
        if not argv:
            raise gdb.GdbError("usage: greenlet bt ID [bt arguments]")
        g = find(argv[0])
        u = Selection.unwinder
        saved = (u.regs, u.thread, u.anchor, Selection.selected_id)
        thread = gdb.selected_thread()
        try:
            print(Selection.select(g))
            gdb.execute("bt " + (argv[1] if len(argv) > 1 else ""))
        finally:
            u.regs, u.thread, u.anchor, Selection.selected_id = saved
            gdb.invalidate_cached_frames()
            if thread is not None:
                thread.switch()


class GreenletOff(gdb.Command):
    """Leave the selected greenlet: back to the thread's own frames."""

    def __init__(self):
        super().__init__("greenlet off", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        print("[back to the thread's own frames]" if Selection.clear()
              else "[no greenlet was selected]")


Selection.install()
InfoGreenlets()
GreenletCommand()
GreenletBt()
GreenletOff()
