#!/usr/bin/env python3
"""How docs/SCALING.md's per-checkout costs were measured (2026-12-03), kept as run.

Starts a Postgres 15 cluster of its own (durable: fsync on; pg_stat_statements; port
55432), the shop with `shop-local --any-ports` on it (SHOP_BIN_DIR: the binaries to
measure), warms up, then per mode: 11 s idle, 20 s of `loadgen run` at concurrency
$CONC, and snapshots of every process's CPU time and RSS (/proc) and every database's
counters before and after. Paths are those of the machine it ran on (/tmp/measure,
/var/tmp/shop-ci-target). analyze.py turns its output into the tables."""
import json, os, re, signal, subprocess, sys, time
M = '/tmp/measure'
PG = f'{M}/pg'; PORT = 55432
PGBIN = '/usr/lib/postgresql/15/bin'
DEBUG = '/var/tmp/shop-ci-target/debug'
def sh(cmd, **kw): return subprocess.run(cmd, shell=True, check=True, text=True, capture_output=True, **kw).stdout
def psql(sql, db='postgres'):
    return sh(f"{PGBIN}/psql -X -q -At -h 127.0.0.1 -p {PORT} -U postgres -d {db} -c \"{sql}\"")
# 1. our own cluster, durable like docs/BENCHMARKS.md, with pg_stat_statements
if not os.path.exists(f'{PG}/data'):
    os.makedirs(PG, exist_ok=True); sh(f'chown postgres {PG}')
    sh(f"su postgres -c '{PGBIN}/initdb -D {PG}/data -U postgres --auth=trust' ")
sh(f"su postgres -c \"{PGBIN}/pg_ctl -D {PG}/data -l {PG}/log -w -o '-p {PORT} -k {PG} -c shared_preload_libraries=pg_stat_statements -c max_connections=300 -c pg_stat_statements.track=top' start\"")
psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
env = dict(os.environ, SHOP_BIN_DIR=f'{M}/bin', DATABASE_URL=f'postgres://postgres@127.0.0.1:{PORT}/postgres', STACK_LOG='warn')
stack = subprocess.Popen([f'{DEBUG}/shop-local', '--any-ports', '--pki-dir', f'{M}/pki'], env=env, stdout=open(f'{M}/stack.out','w'), stderr=subprocess.STDOUT, preexec_fn=os.setsid)
addrs = {}
for _ in range(240):
    time.sleep(0.5)
    out = open(f'{M}/stack.out').read()
    if 'The shop is running' in out and 'Demo catalog' in out:
        for name in ['orchestrator','order-svc','payment-svc','inventory-svc','shipping-svc']:
            m = re.search(rf'^\s+{name}\s+(\S+)$', out, re.M); addrs[name] = m.group(1)
        break
else:
    print(open(f'{M}/stack.out').read()); sys.exit('stack did not start')
print('addresses', addrs)
def children(pid):
    kids = []
    for p in os.listdir('/proc'):
        if p.isdigit():
            try:
                st = open(f'/proc/{p}/stat').read()
                if int(st.rsplit(')',1)[1].split()[1]) == pid: kids.append(int(p))
            except Exception: pass
    return kids
def comm(pid): return open(f'/proc/{pid}/comm').read().strip()
procs = {}
for k in children(stack.pid):
    procs[comm(k)] = k
print('processes', procs)
CLK = os.sysconf('SC_CLK_TCK')
def cpu(pid):
    f = open(f'/proc/{pid}/stat').read().rsplit(')',1)[1].split()
    return (int(f[11]) + int(f[12])) / CLK
def mem(pid):
    s = open(f'/proc/{pid}/status').read()
    g = lambda k: int(re.search(rf'^{k}:\s+(\d+) kB', s, re.M).group(1))
    return g('VmRSS'), g('VmHWM')
def dbstats():
    rows = psql("SELECT d.datname, d.xact_commit, d.tup_inserted + d.tup_updated + d.tup_deleted, coalesce((SELECT sum(calls) FROM pg_stat_statements s WHERE s.dbid = d.datid),0), coalesce((SELECT sum(wal_bytes) FROM pg_stat_statements s WHERE s.dbid = d.datid),0) FROM pg_stat_database d WHERE d.datname LIKE 'shop_%'")
    out = {}
    for line in rows.splitlines():
        n, c, t, calls, wal = line.split('|')
        svc = re.match(r'shop_(.*)_[0-9a-f]+$', n).group(1).replace('_','-')
        out[svc] = dict(commits=int(c), rows=int(t), statements=int(float(calls)), wal=int(float(wal)))
    return out
def backends_cpu():
    rows = psql("SELECT pid, datname FROM pg_stat_activity WHERE datname LIKE 'shop_%'")
    per = {}
    for line in rows.splitlines():
        pid, n = line.split('|'); svc = re.match(r'shop_(.*)_[0-9a-f]+$', n).group(1).replace('_','-')
        try: per.setdefault(svc, {})[int(pid)] = cpu(int(pid))
        except Exception: pass
    return per
def server_wal(): return int(float(psql("SELECT wal_bytes FROM pg_stat_wal")))
def machine():
    f=open('/proc/stat').readline().split()[1:]
    v=list(map(int,f)); return (sum(v)-v[3]-v[4])/CLK, sum(v)/CLK
def snapshot():
    time.sleep(11)  # idle backends report their counters at most every 10 s
    return dict(machine=machine(), t=time.time(), cpu={n: cpu(p) for n,p in procs.items()}, mem={n: mem(p) for n,p in procs.items()}, db=dbstats(), be=backends_cpu(), wal=server_wal())
pki = f'{M}/pki'
def loadgen(mode, seconds, conc, state):
    cmd = [f'{DEBUG}/loadgen', 'run', '--concurrency', str(conc), '--duration', f'{seconds}s', '--mode', mode, '--json', '--state', state,
           '--orchestrator-url', f"https://{addrs['orchestrator']}", '--order-svc-url', f"https://{addrs['order-svc']}",
           '--payment-svc-url', f"https://{addrs['payment-svc']}", '--inventory-svc-url', f"https://{addrs['inventory-svc']}",
           '--shipping-svc-url', f"https://{addrs['shipping-svc']}",
           '--tls-cert-file', f'{pki}/loadgen.pem', '--tls-key-file', f'{pki}/loadgen.key', '--tls-ca-file', f'{pki}/ca.pem',
           '--token-file', f'{pki}/loadgen.token']
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode: print(p.stdout, p.stderr); raise SystemExit('loadgen failed')
    j = p.stdout[p.stdout.index('{'):]
    return json.loads(j)
results = {}
CONC = int(os.environ.get('CONC', '8'))
try:
    loadgen('orchestrated', 3, 8, f'{M}/warm.json'); loadgen('choreographed', 3, 8, f'{M}/warm2.json')
    for mode in ['orchestrated', 'choreographed']:
        a = snapshot(); b = snapshot()   # idle window
        r = loadgen(mode, 20, CONC, f'{M}/{mode}.json')
        c = snapshot()
        results[mode] = dict(idle=(a,b), run=r, after=c, before=b)
        print(mode, r['requests'], r['throughput'], r['outcomes'])
finally:
    os.killpg(stack.pid, signal.SIGINT); time.sleep(3)
    try: os.killpg(stack.pid, signal.SIGKILL)
    except Exception: pass
    json.dump(results, open(f'{M}/results.json','w'), indent=1, default=str)
    sh(f"su postgres -c '{PGBIN}/pg_ctl -D {PG}/data -w -m fast stop'")
