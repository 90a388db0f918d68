#!/bin/sh
# mkman.sh HEADER OUTDIR VERSION: write the man pages of libgreen from
# the contract comments of include/green.h, so they cannot drift from it.
#
# The header is read as groups: a comment followed by the declarations
# right after it (a family, such as green_queue_new ... green_queue_free)
# makes one page in section 3, named after its first function; every
# other function of the family gets a page that sources it (.so), so
# `man 3 green_queue_get` works.  Typedefs between the comment and the
# functions go into the page's SYNOPSIS.  Comments that no function
# follows (a section's introduction, such as the rules every
# synchronisation object follows) are copied into the NOTES of every page
# of that section.  libgreen(7) is the overview: the header's opening
# comment, every section with its pages, and how to debug with gdb.
#
# POSIX sh and awk only.
set -e
if test $# -ne 3; then
    echo "usage: $0 include/green.h OUTDIR VERSION" >&2
    exit 2
fi
header=$1
out=$2
version=$3
mkdir -p "$out"

awk -v out="$out" -v version="$version" '
# roff-escape one line of text (backslashes, leading dots and quotes).
function esc(s) {
    gsub(/\\/, "\\e", s)
    gsub(/-/, "\\-", s)
    if (s ~ /^[.\047]/)
        s = "\\&" s
    return s
}

# The name a declaration declares: the identifier before its first "(".
function decl_name(d,    s) {
    s = d
    sub(/\(.*/, "", s)
    sub(/.*[^A-Za-z0-9_]/, "", s)
    return s
}

# Strip comment markers from one line of a comment.
function comment_text(l) {
    sub(/^[ \t]*\/\*+[ \t]?/, "", l)
    sub(/[ \t]*\*+\/[ \t]*$/, "", l)
    sub(/^[ \t]*\*[ \t]?/, "", l)
    sub(/^[ \t]+/, "", l)
    return l
}

# A blank line or a section banner: what is pending without a function
# (the introduction of a section, its types) becomes a note of it.
function close_region() {
    if (pending != "" || types != "")
        notes[section] = notes[section] pending "\n" \
            (types != "" ? "\001" types "\002" : "")
    pending = ""
    types = ""
    cur = 0
    after_decl = 0
}

function new_group(comment, inline) {
    ngroups++
    gsec[ngroups] = section
    gcomment[ngroups] = comment
    ginline[ngroups] = inline
    gsyn[ngroups] = types
    gnames[ngroups] = ""
    if (!inline)
        last_family[section] = ngroups
    types = ""
    return ngroups
}

function add_decl(g, d, n) {
    gsyn[g] = gsyn[g] d "\n"
    gnames[g] = gnames[g] (gnames[g] == "" ? "" : " ") n
}

# green_queue_put -> "green_queue_" (green_read -> "": no object).
function object_prefix(n,    m) {
    if (match(n, /^green_[a-z]+_/) && RLENGTH < length(n))
        return substr(n, 1, RLENGTH)
    return ""
}

# Where a function without its own comment goes when it follows a
# one-function comment inside a family (green_channel_new inside the
# queue family, green_write_all inside the libc calls): 1. the latest
# page of the same object (green_queue_put: green_queue_new); 2. the
# one-function page if its comment names it (green_select in "poll(2)
# and select(2)"); 3. the family the comment interrupted (green_readv:
# green_read).
function family_for(n,    p, g, base) {
    p = object_prefix(n)
    if (p != "")
        for (g = ngroups; g > 0 && gsec[g] == section; g--)
            if (index(gnames[g] " ", p) == 1)
                return g
    base = n
    sub(/^green_/, "", base)
    if (match(" " gcomment[cur] " ", "[^A-Za-z0-9_]" base "[^A-Za-z0-9_]"))
        return cur
    if (last_family[section] != "" && gsec[last_family[section]] == section)
        return last_family[section]
    return cur
}

BEGIN {
    section = "Overview"
    nsections = 0
}

# The opening comment: the overview of libgreen(7).
NR == 1, /\*\// {
    overview = overview comment_text($0) "\n"
    next
}

# Section banners: /****/ lines and the /*  Title  */ between them.
/^\/\*\*\*\*\*+\/$/ { next }
/^\/\*  [A-Z].*\*\/$/ {
    close_region()
    t = $0
    sub(/^\/\*  /, "", t)
    sub(/ *\*\/$/, "", t)
    section = t
    sections[++nsections] = t
    next
}

# A comment: the contract of the declarations that follow.  Right after
# a declaration it is "inline": about the next function only.
/^[ \t]*\/\*/ {
    c = ""
    line = $0
    while (1) {
        c = c comment_text(line) "\n"
        if (line ~ /\*\//)
            break
        if ((getline line) <= 0)
            break
    }
    pending_inline = after_decl && cur
    pending = pending c
    after_decl = 0
    next
}

# Typedefs, single-line or a struct body up to "} name;".
/^typedef / || /^struct [a-z_]+;$/ {
    t = $0 "\n"
    if ($0 ~ /\{[ \t]*$/) {
        while ((getline line) > 0) {
            t = t line "\n"
            if (line ~ /^}/)
                break
        }
    } else {
        while ($0 !~ /;[ \t]*$/ && (getline line) > 0) {
            $0 = line
            t = t line "\n"
        }
    }
    types = types t
    after_decl = 0
    next
}

# A declaration, possibly over several lines.
/^GREEN_EXPORT / {
    d = $0
    while (d !~ /;[ \t]*$/ && (getline line) > 0)
        d = d "\n" line
    sub(/^GREEN_EXPORT /, "", d)
    n = decl_name(d)
    if (pending != "") {
        cur = new_group(pending, pending_inline)
        pending = ""
        g = cur
    } else if (cur && ginline[cur]) {
        g = family_for(n)
    } else if (cur) {
        g = cur
    } else {
        cur = new_group("", 0)
        g = cur
    }
    add_decl(g, d, n)
    after_decl = 1
    next
}

/^[ \t]*$/ { close_region(); next }

END {
    close_region()
    for (i = 1; i <= ngroups; i++)
        write_page(i)
    write_overview()
}

# Paragraphs of a comment as roff: blank lines separate paragraphs.
function body(text,    n, lines, j, s) {
    n = split(text, lines, "\n")
    s = ""
    for (j = 1; j <= n; j++) {
        if (lines[j] == "") {
            if (s != "" && s !~ /\.PP\n$/ && j < n)
                s = s ".PP\n"
            continue
        }
        s = s esc(lines[j]) "\n"
    }
    return s
}

# The verbatim synopsis (declarations and types).
function verbatim(text,    n, lines, j, s) {
    n = split(text, lines, "\n")
    s = ""
    for (j = 1; j <= n; j++)
        if (lines[j] != "")
            s = s esc(lines[j]) "\n"
    return s
}

# First sentence of a comment, for the NAME line.
function summary(text,    s) {
    s = text
    gsub(/\n/, " ", s)
    if (match(s, /\.( |$)/))
        s = substr(s, 1, RSTART - 1)
    if (length(s) > 70)
        s = substr(s, 1, 67) "..."
    if (s == "")
        s = "see DESCRIPTION"
    return esc(s)
}

function notes_roff(sec,    raw, n, parts, j, s, k, pieces) {
    raw = notes[sec]
    s = ""
    n = split(raw, parts, "\001")
    for (j = 1; j <= n; j++) {
        k = split(parts[j], pieces, "\002")
        if (j > 1) {
            s = s ".PP\n.nf\n" verbatim(pieces[1]) ".fi\n"
            if (k > 1)
                s = s ".PP\n" body(pieces[2])
        } else {
            s = s body(pieces[1])
        }
    }
    return s
}

function write_page(i,    n, fn, file, j, seealso, lib) {
    n = split(gnames[i], fn, " ")
    file = out "/" fn[1] ".3"
    lib = gsec[i] ~ /^Patching/ ? "\\-lgreen\\-patch (pkg\\-config libgreen\\-patch)" \
        : gsec[i] ~ /^TLS/ ? "\\-lgreen\\-tls (pkg\\-config libgreen\\-tls)" \
                           : "\\-lgreen (pkg\\-config libgreen)"
    printf ".TH %s 3 \"\" \"libgreen %s\" \"libgreen manual\"\n", \
        toupper(fn[1]), version > file
    printf ".\\\" Generated by doc/mkman.sh from include/green.h: edit the header.\n" > file
    printf ".SH NAME\n" > file
    for (j = 1; j <= n; j++)
        printf "%s%s", esc(fn[j]), (j < n ? ", " : "") > file
    printf " \\- %s\n", summary(gcomment[i]) > file
    printf ".SH SYNOPSIS\n.nf\n.B #include <green.h>\n.PP\n%s.fi\n.PP\nLink with %s.\n", \
        verbatim(gsyn[i]), lib > file
    printf ".SH DESCRIPTION\n" > file
    if (gcomment[i] != "")
        printf "%s", body(gcomment[i]) > file
    else
        printf "See the NOTES of this section.\n" > file
    if (notes[gsec[i]] != "")
        printf ".SH NOTES\nFor every function of \"%s\":\n.PP\n%s", \
            esc(gsec[i]), notes_roff(gsec[i]) > file
    printf ".SH ERRORS\nAs listed above; the error model is in \\fBlibgreen\\fP(7).\n" > file
    seealso = "\\fBlibgreen\\fP(7)"
    for (j = 1; j <= ngroups; j++) {
        if (gsec[j] == gsec[i] && j != i) {
            split(gnames[j], other, " ")
            seealso = seealso ", \\fB" esc(other[1]) "\\fP(3)"
        }
    }
    printf ".SH SEE ALSO\n%s\n", seealso > file
    close(file)
    for (j = 2; j <= n; j++) {
        printf ".so man3/%s.3\n", fn[1] > (out "/" fn[j] ".3")
        close(out "/" fn[j] ".3")
    }
    page_of[gsec[i]] = page_of[gsec[i]] " " gnames[i]
}

function write_overview(    file, s, j, n, fn, k) {
    file = out "/libgreen.7"
    printf ".TH LIBGREEN 7 \"\" \"libgreen %s\" \"libgreen manual\"\n", version > file
    printf ".\\\" Generated by doc/mkman.sh from include/green.h: edit the header.\n" > file
    printf ".SH NAME\nlibgreen \\- gevent\\(aqs programming model in C: greenlets on one libev hub per thread\n" > file
    printf ".SH SYNOPSIS\n.nf\n.B #include <green.h>\n.fi\n.PP\ncc app.c $(pkg\\-config \\-\\-cflags \\-\\-libs libgreen)\n" > file
    printf ".SH DESCRIPTION\n%s", body(overview) > file
    printf ".SH FUNCTIONS\nOne page per function or family, by section of green.h:\n" > file
    for (s = 1; s <= nsections; s++) {
        if (page_of[sections[s]] == "")
            continue
        printf ".SS %s\n", esc(sections[s]) > file
        n = split(page_of[sections[s]], fn, " ")
        for (j = 1; j <= n; j++)
            printf "\\fB%s\\fP(3)%s\n", esc(fn[j]), (j < n ? "," : "") > file
    }
    printf "%s", \
        ".SH DEBUGGING\n" \
        "\\fBgreen_dump\\fP(3) lists the greenlets of the calling thread; " \
        "GREEN_MONITOR=seconds or \\fBgreen_monitor_start\\fP(3) reports a greenlet " \
        "that blocks the hub, with its backtrace.\n" \
        ".PP\n" \
        "gdb: make install puts a Python extension where gdb auto\\-loads it for " \
        "programs linked with libgreen (datadir/gdb/auto\\-load/libdir/" \
        "libgreen.so.VERSION\\-gdb.py).  gdb loads from its own data directory " \
        "(/usr/share/gdb/auto\\-load): for another prefix, add\n" \
        ".PP\n.nf\n" \
        "add\\-auto\\-load\\-scripts\\-directory PREFIX/share/gdb/auto\\-load\n" \
        "add\\-auto\\-load\\-safe\\-path PREFIX/share/gdb/auto\\-load\n" \
        ".fi\n.PP\n" \
        "to ~/.gdbinit, or \\fBsource\\fP the file.  Commands, live or on a core file:\n" \
        ".TP\n.B info greenlets\n" \
        "every greenlet of every thread\\(aqs hub: id, name, state, what it waits on, " \
        "how long, stack size and use.\n" \
        ".TP\n.BI \"greenlet bt \" ID\n" \
        "the backtrace of greenlet ID, read from its saved context.\n" \
        ".TP\n.BI \"greenlet \" ID\n" \
        "select its frames (\\fBup\\fP, \\fBframe\\fP, \\fBinfo locals\\fP); " \
        "\\fBgreenlet off\\fP goes back to the thread\\(aqs own frames.\n" \
        ".PP\n" \
        "It needs libgreen\\(aqs debug information (the default \\-g build).  " \
        "\\fBgcore\\fP cannot save greenlet stacks guarded with " \
        "MADV_GUARD_INSTALL (Linux 6.13+): run the process with " \
        "GREEN_STACK_GUARD=mprotect before taking a gcore; kernel core dumps " \
        "are complete.\n" \
        ".SH SEE ALSO\nREADME.md and doc/tutorial.md in the source tree; " \
        "the header include/green.h.\n" > file
    close(file)
}
' "$header"
