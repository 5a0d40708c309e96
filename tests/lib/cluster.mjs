// cluster — what the cluster-mode tests start besides pebble: a real Redis (Debian's
// redis-server), a real TCP load balancer (Debian's HAProxy, TCP mode, round robin) on the
// ports pebble validates against, a cuttable TCP relay (one replica's Redis connection),
// and several ott-edge replicas sharing the Redis. Loopback only.
//
//   startRedis({port, password, users, aclFileLines, dir}) -> redis:
//       {port, url({user, password, db}), cli(...args) -> string, stop(), start(), restart({empty}),
//        keys() -> [names], pid}
//     users: [{name, password, rules}] (ACL lines: "user NAME on >PASS RULES").
//   startHaproxy(routes) routes: [{port, servers: [port, ...]}] -> {stop(), logs(), command(line),
//       setServer(i, 'maint'|'ready')}   (HAProxy's runtime API: a killed or stopped replica leaves the rotation)
//   startRelay(targetPort) -> {port, cut(re), restore(), stop()}   (cut: drops and refuses connections,
//       all of them or those whose first bytes match re)
//   startReplicas({pebble, redis, n, names, challenges, cluster, acme, extra, upstream, redisUrl(i)})
//       -> {edges, haproxy, stop(), servedSerials(), waitSameSerial(ms)}
//     replica i gets node_id r<i+1>, its own ports and state_dir; HAProxy forwards pebble's
//     httpPort/tlsPort to the replicas' HTTP/HTTPS listeners in turn.
//   redisPort(slot) -> a port per pebble slot (16379 + slot*3 .. +2)
import { spawn, execFileSync } from 'node:child_process';
import { writeFileSync, mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { startEdge, freePort, tmpDir, sleep, waitFor, slow } from './harness.mjs';
import { verifiedPeer } from './pebble.mjs';

const live = new Set();
process.on('exit', () => {
    for (const p of live) {
        try {
            p.kill('SIGKILL');
        } catch {}
    }
});

export function redisPort(slot, k = 0) {
    return 16379 + slot * 3 + k;
}

function spawnLogged(file, args, out) {
    const p = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(p);
    p.stdout.on('data', (d) => out.push(d.toString()));
    p.stderr.on('data', (d) => out.push(d.toString()));
    p.on('exit', () => live.delete(p));
    return p;
}

async function killWait(p, sig = 'SIGTERM') {
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const done = new Promise((r) => p.once('exit', r));
    p.kill(sig);
    const t = setTimeout(() => p.kill('SIGKILL'), 5000);
    await done;
    clearTimeout(t);
}

export async function startRedis({ port, password = null, users = [], dir = tmpDir('ott-edge-redis-'), extra = [] } = {}) {
    const out = [];
    let proc = null;
    const conf = path.join(dir, 'redis.conf');
    const lines = [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        'save ""',
        'appendonly no',
        'daemonize no',
        'protected-mode yes',
        'loglevel warning',
        ...(password ? [`requirepass ${password}`] : []),
        ...users.map((u) => `user ${u.name} on >${u.password} ${u.rules}`),
        ...extra,
    ];
    writeFileSync(conf, lines.join('\n') + '\n');
    const auth = password ? ['-a', password, '--no-auth-warning'] : [];
    const self = {
        port,
        dir,
        logs: () => out.join(''),
        get pid() {
            return proc?.pid;
        },
        url({ user, password: pw = password, db } = {}) {
            const cred = user ? `${user}:${pw}@` : pw ? `:${pw}@` : '';
            return `redis://${cred}127.0.0.1:${port}${db !== undefined ? `/${db}` : ''}`;
        },
        cli(...args) {
            return execFileSync('redis-cli', ['-p', String(port), ...auth, ...args], { timeout: 5000, stdio: ['ignore', 'pipe', 'pipe'] }).toString().trim();
        },
        keys(pattern = '*') {
            const s = self.cli('--scan', '--pattern', pattern);
            return s ? s.split('\n').sort() : [];
        },
        async start() {
            if (proc) return;
            proc = spawnLogged('redis-server', [conf], out);
            await waitFor(() => {
                try {
                    return self.cli('PING') === 'PONG';
                } catch {
                    return false;
                }
            }, 10000, `redis-server on ${port}: ${out.join('')}`);
        },
        async stop() {
            await killWait(proc, 'SIGKILL');
            proc = null;
        },
        /** kill -9 and start again: without persistence it comes back empty */
        async restart() {
            await self.stop();
            await self.start();
        },
    };
    await self.start();
    return self;
}

export async function startHaproxy(routes) {
    const dir = tmpDir('ott-edge-haproxy-');
    const sock = path.join(dir, 'admin.sock');
    const out = [];
    const cfg = [
        'global',
        '  maxconn 2000',
        `  stats socket ${sock} level admin`,
        'defaults',
        '  mode tcp',
        '  timeout connect 2s',
        '  timeout client 120s',
        '  timeout server 120s',
        // a replica not listening yet (they start side by side) refuses at once: the next try
        // goes to the next server, as a load balancer's health check would have it
        '  retries 3',
        '  option redispatch 1',
    ];
    for (const r of routes) {
        cfg.push(`frontend fe_${r.port}`, `  bind 127.0.0.1:${r.port}`, `  default_backend be_${r.port}`);
        cfg.push(`backend be_${r.port}`, '  balance roundrobin');
        r.servers.forEach((p, i) => cfg.push(`  server s${i + 1} 127.0.0.1:${p}`));
    }
    const file = path.join(dir, 'haproxy.cfg');
    writeFileSync(file, cfg.join('\n') + '\n');
    const proc = spawnLogged('haproxy', ['-db', '-f', file], out);
    for (const r of routes) {
        await waitFor(() => new Promise((res) => {
            const s = net.connect(r.port, '127.0.0.1');
            s.once('connect', () => (s.destroy(), res(true)));
            s.once('error', () => res(false));
        }), 10000, `haproxy on ${r.port}: ${out.join('')}`);
    }
    /** One command on HAProxy's runtime API. */
    const command = (line) =>
        new Promise((resolve, reject) => {
            const c = net.connect(sock);
            const chunks = [];
            c.on('connect', () => c.end(line + '\n'));
            c.on('data', (d) => chunks.push(d));
            c.on('end', () => resolve(Buffer.concat(chunks).toString()));
            c.on('error', reject);
        });
    return {
        proc,
        logs: () => out.join(''),
        command,
        /** Takes server i (0-based) of every backend out of the rotation (maint) or back (ready). */
        async setServer(i, state) {
            for (const r of routes) await command(`set server be_${r.port}/s${i + 1} state ${state}`);
        },
        stop: () => killWait(proc),
    };
}

/**
 * A TCP relay to 127.0.0.1:targetPort that a test can cut: cut() drops every connection and
 * refuses new ones; cut(re) only those whose first bytes from the client match re (e.g. the
 * CLIENT SETNAME of a replica's subscriber connection), so its other connection keeps working.
 */
export async function startRelay(targetPort) {
    const port = await freePort();
    const conns = new Set();
    let cutRe = undefined; // undefined: nothing cut; null: everything; a RegExp: matching connections
    const matches = (x) => cutRe === null || (cutRe instanceof RegExp && cutRe.test(x.head));
    const server = net.createServer((c) => {
        if (cutRe === null) return c.destroy();
        const u = net.connect(targetPort, '127.0.0.1');
        const x = { c, u, head: '' };
        conns.add(x);
        const end = () => {
            c.destroy();
            u.destroy();
            conns.delete(x);
        };
        c.on('data', (d) => {
            if (x.head.length < 512) x.head += d.toString('latin1');
            if (matches(x)) return end();
            u.write(d);
        });
        u.on('data', (d) => c.write(d));
        c.on('error', end).on('close', end);
        u.on('error', end).on('close', end);
    });
    await new Promise((r) => server.listen(port, '127.0.0.1', r));
    const apply = () => {
        for (const x of [...conns]) {
            if (matches(x)) {
                x.c.destroy();
                x.u.destroy();
                conns.delete(x);
            }
        }
    };
    return {
        port,
        cut(re = null) {
            cutRe = re;
            apply();
        },
        restore() {
            cutRe = undefined;
        },
        stop() {
            cutRe = null;
            apply();
            return new Promise((r) => server.close(r));
        },
    };
}

/** The cluster part of a replica's configuration. */
export function clusterConfig(redisUrl, i, extra = {}) {
    return { redis: redisUrl, node_id: `r${i + 1}`, lock_ttl: '3s', ...extra };
}

export async function startReplicas({
    pebble,
    redis,
    n = 3,
    names = ['a.ott-edge.test', 'b.ott-edge.test'],
    challenges = ['http-01'],
    cluster = {},
    acme = {},
    extra = () => ({}),
    upstream = 'http://127.0.0.1:9',
    redisUrl = () => redis.url(),
    stateDirs = null,
    haproxy = true,
}) {
    const ports = [];
    for (let i = 0; i < n; i++) ports.push({ https: await freePort(), http: await freePort(), admin: await freePort() });
    const lb = haproxy
        ? await startHaproxy([
              { port: pebble.ports.httpPort, servers: ports.map((p) => p.http) },
              { port: pebble.ports.tlsPort, servers: ports.map((p) => p.https) },
          ])
        : null;
    const dirs = stateDirs || ports.map(() => path.join(tmpDir('ott-edge-replica-'), 'state'));
    const edges = await Promise.all(
        ports.map((p, i) =>
            startEdge({
                config: {
                    domains: names,
                    upstream,
                    listen: { https: `127.0.0.1:${p.https}`, http: `127.0.0.1:${p.http}`, admin: `127.0.0.1:${p.admin}` },
                    state_dir: dirs[i],
                    acme: pebble.edgeAcmeConfig({ challenges, ...acme }),
                    cluster: clusterConfig(redisUrl(i), i, cluster),
                    ...extra(i),
                },
            }),
        ),
    );
    const self = {
        edges,
        haproxy: lb,
        stateDirs: dirs,
        async servedSerials(name = names[0]) {
            const root = await pebble.root();
            return Promise.all(edges.map((e) => verifiedPeer(e.httpsPort, name, root).then((p) => p.serialNumber, () => null)));
        },
        /** Resolves to the serial once every replica serves the same verified certificate. */
        async waitSameSerial(ms = 20000, not = null) {
            let last = [];
            try {
                await waitFor(async () => {
                    last = await self.servedSerials();
                    return last[0] && last[0] !== not && last.every((s) => s === last[0]);
                }, ms, 'every replica serving the same certificate');
            } catch (e) {
                const lbState = lb ? `haproxy pid ${lb.proc.pid} exit ${lb.proc.exitCode ?? '-'} signal ${lb.proc.signalCode ?? '-'}: ${lb.logs().slice(-500)}` : 'no haproxy';
                throw new Error(`${e.message} (serials now ${JSON.stringify(last)}; ${lbState})\n--- replica logs (tail) ---\n${edges.map((x, i) => `r${i + 1}:\n` + x.logs.slice(-15).join('\n')).join('\n')}`);
            }
            return last[0];
        },
        async stop() {
            await Promise.all(edges.map((e) => e.stop()));
            await lb?.stop();
        },
    };
    return self;
}

/** pebble's count of new accounts (newAccount POSTs that created one). */
export function accountCount(pebble) {
    return (pebble.logs().match(/POST \/sign-me-up/g) || []).length;
}

export { sleep, waitFor, mkdirSync };
