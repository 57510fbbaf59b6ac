#!/usr/bin/env python3
"""Per checkout, from a file measure.py wrote (c32-track-top.json, c8-track-all.json):
each process's CPU time and RSS, and each database's statements, commits, rows written
(inserted + updated + deleted), WAL bytes (pg_stat_statements) and its backends' CPU.
What the idle stack does meanwhile (lease scans, outbox polls) is measured over the
11 s before the load and taken off at the same rate.

    python3 analyze.py c32-track-top.json
"""
import json, sys

R = json.load(open(sys.argv[1]))
for mode, r in R.items():
    s = r['snapshots']; a, b, c = s['idle_start'], s['load_start'], s['load_end']
    run = r['run']; n = run['requests']
    idle_s = b['t'] - a['t']; run_s = c['t'] - b['t']
    print(f"== {mode}: {n} checkouts in {run['seconds']:.1f} s ({run['throughput']:.1f}/s), "
          f"p50 {run['latency_ms']['p50']} ms, p99 {run['latency_ms']['p99']} ms")
    print(f"{'process':14} {'CPU ms/checkout':>16} {'RSS MiB':>8} {'peak RSS MiB':>12}")
    for p in b['cpu']:
        idle_rate = (b['cpu'][p] - a['cpu'][p]) / idle_s
        d = (c['cpu'][p] - b['cpu'][p]) - idle_rate * run_s
        print(f"{p:14} {1000 * d / n:16.3f} {c['mem'][p][0] / 1024:8.1f} {c['mem'][p][1] / 1024:12.1f}")
    print(f"{'database':14} {'statements':>10} {'commits':>8} {'rows':>6} {'WAL bytes':>10} {'backend CPU ms':>15}")
    total = dict(statements=0, commits=0, rows=0, wal=0, cpu=0)
    for d in sorted(c['db']):
        v = {}
        for k in ['statements', 'commits', 'rows', 'wal']:
            idle_rate = (b['db'][d][k] - a['db'][d][k]) / idle_s
            v[k] = ((c['db'][d][k] - b['db'][d][k]) - idle_rate * run_s) / n
            total[k] += v[k]
        cpu = sum(t - b['be'].get(d, {}).get(pid, 0.0) for pid, t in c['be'].get(d, {}).items())
        total['cpu'] += 1000 * cpu / n
        print(f"{d:14} {v['statements']:10.1f} {v['commits']:8.1f} {v['rows']:6.1f} {v['wal']:10.0f} {1000 * cpu / n:15.3f}")
    idle_wal = (b['wal'] - a['wal']) / idle_s
    server_wal = ((c['wal'] - b['wal']) - idle_wal * run_s) / n
    print(f"{'all':14} {total['statements']:10.1f} {total['commits']:8.1f} {total['rows']:6.1f} "
          f"{total['wal']:10.0f} {total['cpu']:15.3f}   (server-wide WAL: {server_wal:.0f} bytes)")
    if 'machine' in c:
        busy = c['machine'][0] - b['machine'][0]
        print(f"machine: {busy / run_s:.2f} of 2 cores busy over the window")
