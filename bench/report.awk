# bench/report.awk - turn bench/run.sh's raw lines into the results table.
#
# Input (one record per line, written by query.c, churn.c and run.sh):
#   M key cidr label...            SKIP key reason...
#   Q N key round ns batch
#   SIZE N sessions peers          map sizes of the query load from N on (0: default)
#   RELOAD N ms cidr got want      MEM size name entries bytes
#   OTHERS n                       programs of other tests on the tracepoint
#   P config link run_cnt run_time_ns conns
#   C round config rate R conns N errors E ms MS cpu SHARE workers W
# Variables: quick (1: smoke run), qdat and cdat (plot data files to write).
# Output: a Markdown table (readable as plain text too). Every figure is a
# median over rounds; ratios are medians of per-round ratios where rounds
# pair up (churn), else ratios of medians (query).
# Portable awk (Debian's default is mawk): no asort, no gensub.

function median(key,    n, i, j, v, t) {
	n = cnt[key]
	if (!n)
		return ""
	for (i = 1; i <= n; i++)
		v[i] = val[key, i]
	for (i = 2; i <= n; i++)		# insertion sort: n is small
		for (j = i; j > 1 && v[j - 1] > v[j]; j--) {
			t = v[j]; v[j] = v[j - 1]; v[j - 1] = t
		}
	return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}

function add(key, x) {
	val[key, ++cnt[key]] = x
}

function dur(ns) {
	if (ns >= 1e6) return sprintf("%.2f ms", ns / 1e6)
	if (ns >= 1e3) return sprintf("%.2f µs", ns / 1e3)
	return sprintf("%.0f ns", ns)
}

function bytes(b) {
	if (b >= 1048576) return sprintf("%.1f MiB", b / 1048576)
	return sprintf("%.1f B", b)
}

function thousands(x,    s, out) {
	s = sprintf("%.0f", x)
	out = ""
	while (length(s) > 3) {
		out = "," substr(s, length(s) - 2) out
		s = substr(s, 1, length(s) - 3)
	}
	return s out
}

# "2440× faster" / "3.1× slower" for a time ratio against a baseline.
function speed(r) {
	if (r == "") return ""
	if (r < 1) return sprintf(1 / r >= 10 ? "%.0f× faster" : "%.2f× faster", 1 / r)
	return sprintf("%.2f× slower", r)
}

function verdict(ok) {
	return ok ? "PASS" : "MISS"
}

function row(section, what, value, ratio, target) {
	gsub(/\|/, "\\|", what)	# a table cell cannot hold a bare |
	printf "| %s | %s | %s | %s | %s |\n", section, what, value, ratio, target
}

function label_from(start,    s, i) {
	s = $start
	for (i = start + 1; i <= NF; i++)
		s = s " " $i
	return s
}

# ---- reading ----------------------------------------------------------------

$1 == "M" { method[++nmethods] = $2; mcidr[$2] = $3; mlabel[$2] = label_from(4) }
$1 == "SKIP" { skip[$2] = label_from(3) }
$1 == "Q" {
	if (!(($2) in seen_level)) { seen_level[$2] = 1; level[++nlevels] = $2 }
	add("q " $2 " " $3, $5)
}
$1 == "SIZE" {
	size_sessions = $3; size_peers = $4
	if ($3 || $4) size_note = size_note (size_note ? "; " : "") "from N=" thousands($2) \
	    ": " size_flags()
}
$1 == "RELOAD" {
	reload_n = $2; reload_ms = $3
	reload_detail = reload_detail (reload_detail ? ", " : "") $4 " " $5 "/" $6
	if ($5 != $6) reload_bad = 1
}
$1 == "C" {
	if (!(($3) in seen_config)) { seen_config[$3] = 1; config[++nconfigs] = $3 }
	rate[$2, $3] = $5
	cpu_rate[$2, $3] = $13 > 0 ? $5 / $13 : 0
	add("rate " $3, $5)
	add("cpu " $3, $13)
	if ($5 > 0) add("cpu_ns_per_conn " $3, $15 * $13 / $5 * 1e9)
	errors[$3] += $9
	conns_sum[$3] += $7
	rounds[$2] = 1
}
$1 == "P" {
	k = $2 " " $3
	if (!(k in prog_cnt)) prog_key[++nprogs] = k
	prog_cnt[k] += $4; prog_ns[k] += $5; prog_conns[k] += $6
}
$1 == "OTHERS" { others = $2 }
$1 == "MEM" { mem[$2, $3] = $5; mem_entries[$2, $3] = $4; mem_size[$2] = 1; mem_name[$3] = 1 }

# ---- writing ----------------------------------------------------------------

# The plot's data: N, then each method's median in µs ("?" if skipped),
# under a header of short titles.
function plot_header(    i, title) {
	title["c_agg"] = "connaudit C, /24"
	title["c_exact"] = "connaudit C, /25 (128 lookups)"
	title["c_sub"] = "connaudit C, /20 (16 lookups)"
	title["c_cap"] = "connaudit C, /8 (256 lookups)"
	title["c_scan"] = "connaudit C, /2 (scan)"
	title["lua"] = "connaudit Lua, /24"
	title["diag"] = "sock_diag dump"
	title["ss"] = "ss | wc -l"
	printf "N" > qdat
	for (i = 1; i <= nmethods; i++)
		printf " \"%s\"", (method[i] in title ? title[method[i]] : method[i]) > qdat
	printf "\n" > qdat
}

function query_rows(    l, n, i, k, m, base) {
	plot_header()
	for (l = 1; l <= nlevels; l++) {
		n = level[l]
		base = median("q " n " diag")
		printf "%s", n > qdat
		for (i = 1; i <= nmethods; i++) {
			k = method[i]
			m = median("q " n " " k)
			printf " %s", (m == "" ? "?" : m / 1000) > qdat
			if (k in skip) {
				if (l == 1) row("query", mlabel[k], "skipped: " skip[k], "", "")
				continue
			}
			row("query N=" thousands(n), mlabel[k] " (" mcidr[k] ")", dur(m),
			    k == "diag" ? "baseline" : speed(m / base), "")
		}
		printf "\n" > qdat
	}
	close(qdat)
}

# The level a target is stated at, or the nearest one this run has.
function nearest_level(want,    l, best) {
	best = level[1]
	for (l = 2; l <= nlevels; l++)
		if ((level[l] - want) ^ 2 < (best - want) ^ 2)
			best = level[l]
	return best
}

# Unconfigured masks at the largest N: those summed from lookups, worst
# first, and the one too wide for that (a scan), each against the dump.
function mask_targets(n,    r, worst, k, i, s, nk) {
	nk = split("c_exact c_sub c_cap", k, " ")
	worst = ""
	for (i = 1; i <= nk; i++) {
		r = median("q " n " diag") / median("q " n " " k[i])
		s = s (s ? ", " : "") mcidr[k[i]] sprintf(" %.0f×", r)
		if (worst == "" || r < worst) worst = r
	}
	row("target", "unconfigured mask summed from lookups vs sock_diag dump, N=" \
	    thousands(n) " (" s ")", sprintf("%.0f× faster", worst), "",
	    ">= 50× " verdict(worst >= 50))
	r = median("q " n " diag") / median("q " n " c_scan")
	row("target", "unconfigured mask too wide to sum (" mcidr["c_scan"] ", a scan) vs " \
	    "sock_diag dump, N=" thousands(n), sprintf("%.1f× faster", r), "",
	    ">= 50× " verdict(r >= 50))
	if (r < 50)
		row("note", "the scan reads every table slot in use (the bitmap " \
		    "ca_table_used skips the free ones): one read of each key held is its " \
		    "floor. Summing from more lookups would read more: the /16s of a /2 are " \
		    "16,384 keys, mostly absent, and an absent key reads its whole probe " \
		    "sequence (32 slots)", "",
		    "", "")
	r = median("q " n " c_exact") / median("q " level[1] " c_exact")
	row("target", "unconfigured mask summed from lookups (" mcidr["c_exact"] "), N=" \
	    thousands(n) " / N=" thousands(level[1]), sprintf("%.2f", r), "",
	    "<= 1.2 " verdict(r <= 1.2))
}

function query_targets(    n, r, lo, hi, l, worst, c, lua, s) {
	n = nearest_level(10000)
	r = median("q " n " diag") / median("q " n " c_agg")
	row("target", "configured-prefix query vs sock_diag dump, N=" thousands(n),
	    sprintf("%.0f× faster", r), "", ">= 1000× " verdict(r >= 1000))
	lo = level[1]; hi = level[nlevels]
	# Issue 18 states the any-mask goal at 50k and asks that it hold at 200k.
	if (nearest_level(50000) != hi)
		mask_targets(nearest_level(50000))
	mask_targets(hi)
	r = median("q " hi " c_agg") / median("q " lo " c_agg")
	row("target", "configured-prefix query, N=" thousands(hi) " / N=" thousands(lo),
	    sprintf("%.2f", r), "", "<= 1.2 " verdict(r <= 1.2))
	if (r > 1.2 && !("lua" in skip))
		row("note", sprintf("at N=%s the Lua loop over an empty C function, which " \
		    "reads no table, took %.2f times its time at N=%s: the machine was " \
		    "slower at that level, not only the query", thousands(hi),
		    median("q " hi " lua_floor") / median("q " lo " lua_floor"), thousands(lo)),
		    "", "", "")
	bpf_targets("c_agg", "C library", 20)
	if ("lua" in skip) {
		row("target", "Lua module / C library", "not measured: " skip["lua"], "", "<= 1.5 n/a")
		return
	}
	worst = 0; s = ""
	for (l = 1; l <= nlevels; l++) {
		c = median("q " level[l] " lua") / median("q " level[l] " c_agg")
		s = s (s ? ", " : "") sprintf("%.2f", c)
		if (c > worst) worst = c
	}
	row("target", "Lua module / C library, configured /24, per N", s, "",
	    "<= 1.5 " verdict(worst <= 1.5))
	s = ""
	for (l = 1; l <= nlevels; l++)
		s = s (s ? ", " : "") sprintf("%.0f ns of %.0f ns", \
		    median("q " level[l] " lua_floor"), median("q " level[l] " lua"))
	row("floor", "of the Lua call: the same loop calling an empty C function, per N", s, "",
	    "")
	bpf_targets("lua", "Lua module", 4)
}

# How many times faster than one bpf() lookup a configured-prefix query is,
# at every N (the worst counts).
function bpf_targets(k, what, goal,    l, r, worst, s) {
	worst = 0; s = ""
	for (l = 1; l <= nlevels; l++) {
		r = median("q " level[l] " bpf") / median("q " level[l] " " k)
		s = s (s ? ", " : "") sprintf("%.0f×", r)
		if (!worst || r < worst) worst = r
	}
	row("target", "configured /24 through the " what " vs one bpf() lookup, per N", s, "",
	    ">= " goal "× " verdict(worst >= goal))
}

# The load's map sizes beyond the defaults, as `connaudit load` options.
function size_flags() {
	return (size_sessions ? "--max-sessions " size_sessions : "default --max-sessions") \
	    (size_peers ? " --max-peers " size_peers : " default --max-peers")
}

function query_checks() {
	if (reload_n == "")
		return
	row("check", "unload + load with " thousands(reload_n) " held: seeded counts " \
	    "(got/want " reload_detail ")", sprintf("load %.0f ms", reload_ms), "",
	    reload_bad ? "FAIL" : "PASS")
	if (reload_n < 200000)
		return
	row("target", "load including seeding with " thousands(reload_n) " held (" \
	    size_flags() ")",
	    sprintf("%.0f ms", reload_ms), "", "< 3 s " verdict(reload_ms < 3000))
}

# Median over rounds of x(config) / x(bare) in the same round, for x the
# rate ("rate") or the rate per CPU-second the workers got ("cpu_rate").
function round_ratio(c, what,    r, key, num, den) {
	key = what " ratio " c
	if (cnt[key])
		return median(key)
	for (r in rounds) {
		num = what == "rate" ? rate[r, c] : cpu_rate[r, c]
		den = what == "rate" ? rate[r, "bare"] : cpu_rate[r, "bare"]
		if (den > 0 && num != "")
			add(key, num / den)
	}
	return median(key)
}

# Rates compare well only when every configuration's workers had their
# CPUs; when other load took CPU (median share < 0.9 anywhere), judge by
# connections per CPU-second the workers got instead.
function churn_basis(    i, c) {
	for (i = 1; i <= nconfigs; i++)
		if (median("cpu " config[i]) < 0.9)
			return "cpu_rate"
	return "rate"
}

function churn_rows(    i, c, e, names) {
	names["bare"] = "nothing loaded"
	names["default"] = "connaudit, default mode (whole host)"
	names["cgroup"] = "connaudit, cgroup-scoped mode (test cgroup)"
	names["ct"] = "nftables ct count over 1000000 (never triggers)"
	names["floor1"] = "one empty tp_btf program on inet_sock_set_state (bench/floor)"
	names["floor2"] = "two empty tp_btf programs (connaudit attaches two)"
	names["fullmap"] = "connaudit, ca_peers full of live entries: every connection a new peer"
	if (others)
		row("note", others " other program(s) on inet_sock_set_state (other tests' " \
		    "auditors) ran through the churn rounds: every configuration paid for " \
		    "them, which flatters the ratios (see the estimate rows)", "", "", "")
	for (i = 1; i <= nconfigs; i++) {
		c = config[i]
		printf "%s %s %s\n", c, median("rate " c),
		    (c == "bare" ? 1 : round_ratio(c, "rate")) > cdat
		e = errors[c] ? sprintf(", %d failed connects", errors[c]) : ""
		row("churn", names[c], sprintf("%s conn/s (workers' CPU share %.2f%s)",
		    thousands(median("rate " c)), median("cpu " c), e),
		    c == "bare" ? "baseline" : sprintf("%.3f (per CPU-second: %.3f)",
		    round_ratio(c, "rate"), round_ratio(c, "cpu_rate")), "")
	}
	close(cdat)
	churn_targets(churn_basis())
}

function churn_targets(basis,    what, d, ct, r) {
	if (!("default" in seen_config) || !("ct" in seen_config))
		return
	what = basis == "rate" ? "rate" : "rate per CPU-second (other load took CPU)"
	d = round_ratio("default", basis)
	ct = round_ratio("ct", basis)
	row("target", "connaudit default mode / nothing loaded, " what, sprintf("%.3f", d), "",
	    ">= 0.92 " verdict(d >= 0.92) "; >= 0.95 " verdict(d >= 0.95))
	if ("floor2" in seen_config) {
		r = d / round_ratio("floor2", basis)
		row("target", "connaudit default mode / two empty programs, " what \
		    " (the cost of counting, without the tracepoint's own)",
		    sprintf("%.3f", r), "", ">= 0.97 " verdict(r >= 0.97))
		if (r < 0.97 || d < 0.92)
			row("note", "hot path: what was tried and measured (marks in socket " \
			    "storage or a slot array, sock_ops state callbacks instead of the " \
			    "twin tracepoints, counts in the mapped table, admission through " \
			    "it) and where the time goes: bench/README.md, \"Hot path: what " \
			    "was tried\"", "", "", "")
	}
	r = 1 - ct > 0 ? (1 - d) / (1 - ct) : ""
	row("target", "cost of connaudit default / cost of ct count (cost = 1 - ratio, " \
	    what ")", r == "" ? "ct count cost nothing measurable" : sprintf("%.2f", r), "",
	    "< 0.33 " (r == "" ? "n/a" : verdict(r < 1 / 3)))
}

function program_rows(    i, k, split_k, what) {
	for (i = 1; i <= nprogs; i++) {
		k = prog_key[i]
		split(k, split_k, " ")
		if (!prog_cnt[k]) continue
		what = split_k[2] == "other_tests_programs" ? \
		    "other tests' programs on inet_sock_set_state, in a nothing-loaded round" : \
		    split_k[2] " in " split_k[1] " mode"
		row("BPF", what " (kernel.bpf_stats_enabled=1, one extra round)",
		    sprintf("%.0f ns/run", prog_ns[k] / prog_cnt[k]),
		    sprintf("%.1f runs, %s per connection", prog_cnt[k] / prog_conns[k],
			    dur(prog_ns[k] / prog_conns[k])), "")
	}
}

# Program time per connection of one configuration's programs (ns).
function prog_ns_per_conn(config,    i, k, split_k, sum) {
	sum = 0
	for (i = 1; i <= nprogs; i++) {
		k = prog_key[i]
		split(k, split_k, " ")
		if (split_k[1] == config && split_k[2] != "other_tests_programs" && prog_conns[k])
			sum += prog_ns[k] / prog_conns[k]
	}
	return sum
}

# Other tests' auditors on the same tracepoint slow every round, "nothing
# loaded" included, which flatters the measured ratios. Estimate the ratio
# a host without them would show from CPU time per connection: bare T
# (workers' CPU / rate), minus the others' program time F, against
# connaudit's program time A: (T - F) / (T - F + A).
function estimate_rows(    t, f, a, i, c) {
	t = median("cpu_ns_per_conn bare")
	f = prog_cnt["bare other_tests_programs"] ? \
	    prog_ns["bare other_tests_programs"] / prog_conns["bare other_tests_programs"] : 0
	if (t == "")
		return
	for (i = 1; i <= nconfigs; i++) {
		c = config[i]
		a = prog_ns_per_conn(c)
		if (!a) continue
		row("estimate", "connaudit " c " mode rate / nothing loaded, from program time " \
		    "with other tests' programs taken out: (T-F)/(T-F+A)",
		    sprintf("%.3f", (t - f) / (t - f + a)),
		    sprintf("T=%s bare CPU/conn, F=%s others, A=%s connaudit", dur(t), dur(f),
			    dur(a)), "")
	}
}

function memory_rows(    name, lo, hi, total, what) {
	what["ca_peers"] = "bytes per tracked peer"
	what["ca_prefixes"] = "bytes per aggregate entry"
	what["ca_marks"] = "bytes per counted session"
	lo = 65536; hi = 131072
	for (name in mem_name)
		if (name in what) {
			row("memory", what[name] " (" name "): (memlock at " hi " - at " lo \
			    ") / " lo " entries; preallocated, so memlock counts max_entries",
			    bytes((mem[hi, name] - mem[lo, name]) / (hi - lo)),
			    sprintf("%s at %d entries", bytes(mem[lo, name]), lo), "")
		}
	# Its slots: twice the entries of ca_peers and ca_prefixes, rounded up
	# to a power of two; both double from lo to hi.
	if ("ca_table" in mem_name)
		row("memory", "ca_table bytes per ca_peers or ca_prefixes entry (two 32-byte " \
		    "slots; more where the power-of-two rounding adds slots): (memlock at " \
		    hi " - at " lo ") / (2 × " lo ") entries",
		    bytes((mem[hi, "ca_table"] - mem[lo, "ca_table"]) / (2 * (hi - lo))),
		    sprintf("%s at %d slots", bytes(mem[lo, "ca_table"]),
			    mem_entries[lo, "ca_table"]), "")
	total = 0
	for (name in mem_name)
		total += mem[lo, name]
	if (total)
		row("memory", "all maps of one load, default sizes (memlock sum)", bytes(total), "", "")
}

END {
	print "| Section | Measurement | Value | Ratio | Target |"
	print "|---|---|---|---|---|"
	if (quick)
		row("note", "BENCH_QUICK=1: tiny N, 1-2 rounds; a smoke run, not results", "", "", "")
	if (size_note)
		row("note", "query maps sized for the sessions held (a reload, which seeds " \
		    "them, before the level that needs it) " size_note "; default sizes below",
		    "", "", "")
	query_rows()
	query_targets()
	query_checks()
	churn_rows()
	program_rows()
	estimate_rows()
	memory_rows()
}
