// harness — what every integration test imports (ESM; only node and `ws`).
//
// Starts the OTT-like upstream and ott-edge on loopback with free ports, runs curl, makes
// certificates with openssl, and kills everything it started when the process exits.
// Env: OTT_EDGE_BIN (default ../build/ott-edge relative to tests/), OTT_EDGE_SANITIZE=1
// (every timeout x3, see `slow`), OTT_EDGE_TEST_VERBOSE=1 (echo child stderr live),
// OTT_EDGE_TEST_LOG_LEVEL=debug (default log.level of every ott-edge started).
// ott-edge children get our env minus every OTT_EDGE_* variable (plus `env`), and
// LSAN_OPTIONS=suppressions=lsan.supp unless LSAN_OPTIONS is already set.
// startEdge's default config: listen.* on 127.0.0.1 free ports, state_dir in a tmp dir,
// shutdown {delay: 0s, grace: 5s}; `config` is deep-merged over it (null removes a key).
//
// Stable API (other test files depend on it; add, do not change):
//   slow, sleep(ms), waitFor(fn, timeoutMs, what), freePort(), tmpDir(), toYaml(obj)
//   startUpstream({port, env, verbose}) -> {port, url, pid, proc, stop(), kill(sig)}
//   startEdge({config, env, args, expectExit, configText, waitReady, timeoutMs, noConfigFile, bin})
//       -> {httpsPort, httpPort, adminPort, pid, proc, logs, stderr(), waitForLog(re, ms),
//           appLogs(), kill(sig), waitExit(ms) -> {code, signal}, stop(), configPath, dir, url, exited}
//       with expectExit: resolves to {code, signal, logs, stderr, stdout} once it exits.
//   runEdge(args, {env, timeoutMs, cwd}) -> {code, signal, stdout, stderr}   (one-shot runs)
//   curl(args, {timeoutMs}) -> {code, stdout, stderr}
//   runProcess(file, args, {env, timeoutMs, cwd, input}) -> {code, signal, stdout, stderr, timedOut}
//   adminGet(edge, path) -> {status, headers, body}
//   httpGet(url, {headers, method, body, timeoutMs}) -> {status, headers, rawHeaders, body}
//   httpsGet(port, path, {headers, method, body, servername, ca, timeoutMs})   (HTTP/1.1, insecure)
//   h2Connect(port, {servername, ca}) -> ClientHttp2Session;
//   h2Request(session, path, {headers, method, body, timeoutMs}) -> {status, headers, body}
//   openWs(url, {headers, ca, servername, timeoutMs}) -> {ws, next(ms), nextJson(ms), send(x), close(), closed, closeInfo}
//   makeCert({dir, cn, sans, days, name}) -> {certFile, keyFile, pem, serial, fingerprint256}
//   peerCert(port, {servername, alpn}) -> {serialNumber, fingerprint256, subject, alpnProtocol, protocol}
//   rawTls(port, bytes, {servername, timeoutMs}) -> string (all the server sent until close/timeout)
//   rawTcp(port, bytes, {timeoutMs}) -> string
//   headerPairs(debugJson), headerValues(debugJson, lowerName)   (for the upstream's /debug/headers)
//   sanitizerReports() -> [{pid, report}]  (any found also fail the file at exit)
//   EDGE_BIN, UPSTREAM_SCRIPT, TESTS_DIR

import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import http from 'node:http';
import https from 'node:https';
import http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { after } from 'node:test';

export const TESTS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const EDGE_BIN = process.env.OTT_EDGE_BIN
    ? path.resolve(TESTS_DIR, process.env.OTT_EDGE_BIN)
    : path.resolve(TESTS_DIR, '../build/ott-edge');
export const UPSTREAM_SCRIPT = path.join(TESTS_DIR, 'upstream/ott-upstream.mjs');
export const slow = process.env.OTT_EDGE_SANITIZE === '1' ? 3 : 1;
const verbose = process.env.OTT_EDGE_TEST_VERBOSE === '1';

// ---------------------------------------------------------------- cleanup at exit
const children = new Set();
const dirs = new Set();
// Sanitizer reports seen on any ott-edge's stderr: they fail the test file at exit (even when
// no test looked at that process's exit code), with the report printed.
const SANITIZER_RE = /^==\d+==(ERROR|WARNING): \w*Sanitizer|runtime error: |^SUMMARY: \w*Sanitizer/;
const sanitizerHits = []; // {pid, logs}
export function sanitizerReports() {
    return sanitizerHits.map(({ pid, logs }) => ({ pid, report: logs.slice(logs.findIndex((l) => SANITIZER_RE.test(l) || /^={20,}$/.test(l))).join('\n') }));
}
process.on('exit', () => {
    if (sanitizerHits.length === 0) return;
    for (const { pid, report } of sanitizerReports()) {
        process.stderr.write(`\n--- sanitizer report from ott-edge pid ${pid} ---\n${report.split('\n').slice(0, 80).join('\n')}\n`);
    }
    process.stderr.write(`harness: ${sanitizerHits.length} ott-edge process(es) reported sanitizer errors: failing this file\n`);
    process.exitCode = 1;
});
function cleanup() {
    for (const p of children) {
        try {
            p.kill('SIGKILL');
        } catch {}
    }
    children.clear();
    for (const d of dirs) {
        try {
            rmSync(d, { recursive: true, force: true });
        } catch {}
    }
    dirs.clear();
}
process.on('exit', cleanup);
// Under the test runner, also once every test of the file is over: a test that failed
// half-way leaves its processes running, and their pipes would keep this file (and ctest)
// waiting until the timeout instead of reporting the failure.
if (process.env.NODE_TEST_CONTEXT) after(cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
        cleanup();
        process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
    });
}

function track(proc) {
    children.add(proc);
    proc.on('exit', () => children.delete(proc));
    return proc;
}

// ---------------------------------------------------------------- small helpers
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls fn (may be async) until it returns a truthy value; throws after timeoutMs. */
export async function waitFor(fn, timeoutMs = 5000, what = 'condition') {
    const end = Date.now() + timeoutMs * slow;
    let last;
    for (;;) {
        try {
            const v = await fn();
            if (v) return v;
        } catch (e) {
            last = e;
        }
        if (Date.now() > end) throw new Error(`timed out after ${timeoutMs * slow} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
        await sleep(100);
    }
}

function withTimeout(promise, ms, what) {
    let t;
    return Promise.race([
        promise,
        new Promise((_, rej) => {
            t = setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms);
        }),
    ]).finally(() => clearTimeout(t));
}

// A free port, picked at random below the kernel's ephemeral range (32768-60999 here): a
// port the kernel handed us for a moment (listen on 0) is the next one it hands to some
// outgoing connection, so a test that binds it a few milliseconds later could find it taken
// by any other test running in parallel. Never the same port twice in one process; the
// fixed ranges (pebble 5600-5699, 14000-15049) are below 20000, and 27000-27999 is left
// to the benchmark scripts (tests/bench/*.sh).
const portsGiven = new Set();
function canBind(port) {
    return new Promise((resolve) => {
        const srv = net.createServer();
        srv.unref();
        srv.once('error', () => resolve(false));
        srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
}
export async function freePort() {
    for (let i = 0; i < 500; i++) {
        const port = 20000 + Math.floor(Math.random() * 12000);
        if (portsGiven.has(port) || (port >= 27000 && port < 28000)) continue; // the benchmarks' ports
        portsGiven.add(port);
        if (await canBind(port)) return port;
    }
    throw new Error('freePort: no free port found in 20000-31999');
}

export function tmpDir(prefix = 'ott-edge-test-') {
    const d = mkdtempSync(path.join(os.tmpdir(), prefix));
    dirs.add(d);
    return d;
}

// ---------------------------------------------------------------- YAML
const PLAIN = /^[A-Za-z_./][A-Za-z0-9_./:@+-]*$/;
const RESERVED = /^(true|false|yes|no|on|off|null|y|n|~)$/i;
function scalar(v) {
    if (v === null || v === undefined) return '~';
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    const s = String(v);
    if (PLAIN.test(s) && !RESERVED.test(s) && !/:\s|:$/.test(s)) return s;
    return JSON.stringify(s);
}

/** Renders a plain object as block YAML. Keys whose value is undefined or null are left out. */
export function toYaml(obj, indent = 0) {
    const pad = ' '.repeat(indent);
    let out = '';
    for (const [k, v] of Object.entries(obj)) {
        if (v === undefined || v === null) continue;
        if (Array.isArray(v)) {
            if (v.length === 0) out += `${pad}${k}: []\n`;
            else if (v.every((x) => typeof x !== 'object' || x === null)) {
                out += `${pad}${k}:\n` + v.map((x) => `${pad}  - ${scalar(x)}\n`).join('');
            } else {
                out += `${pad}${k}:\n`;
                for (const x of v) out += `${pad}  -\n` + toYaml(x, indent + 4);
            }
        } else if (typeof v === 'object') {
            out += `${pad}${k}:\n` + toYaml(v, indent + 2);
        } else {
            out += `${pad}${k}: ${scalar(v)}\n`;
        }
    }
    return out;
}

function isObj(x) {
    return x && typeof x === 'object' && !Array.isArray(x);
}
function merge(base, over) {
    const out = { ...base };
    for (const [k, v] of Object.entries(over || {})) {
        out[k] = isObj(v) && isObj(out[k]) ? merge(out[k], v) : v;
    }
    return out;
}

/** The environment for a child ott-edge: ours without any OTT_EDGE_* (OTT_EDGE_BIN etc. would be
 *  read as config keys), plus `env`. */
function childEnv(env = {}) {
    const e = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('OTT_EDGE_')) e[k] = v;
    if (!e.LSAN_OPTIONS) e.LSAN_OPTIONS = `suppressions=${path.join(TESTS_DIR, 'lsan.supp')}:print_suppressions=0`;
    for (const [k, v] of Object.entries(env)) {
        if (v === undefined || v === null) delete e[k];
        else e[k] = String(v);
    }
    return e;
}

function lineCollector(stream, sink, echoPrefix, onLine) {
    let buf = '';
    stream.setEncoding('utf8');
    stream.on('data', (d) => {
        buf += d;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, i);
            buf = buf.slice(i + 1);
            sink.push(line);
            if (onLine) onLine(line);
            if (verbose) process.stderr.write(`${echoPrefix}${line}\n`);
        }
    });
    stream.on('end', () => {
        if (buf) sink.push(buf);
        buf = '';
    });
}

function exitPromise(proc) {
    return new Promise((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) resolve({ code: proc.exitCode, signal: proc.signalCode });
        else proc.once('exit', (code, signal) => resolve({ code, signal }));
    });
}

// ---------------------------------------------------------------- the upstream
export async function startUpstream({ port, env = {}, verbose: v = false } = {}) {
    port = port || (await freePort());
    const proc = track(
        spawn(process.execPath, [UPSTREAM_SCRIPT, '--port', String(port), '--host', '127.0.0.1'], {
            env: { ...process.env, ...(v || verbose ? { OTT_UPSTREAM_VERBOSE: '1' } : {}), ...env },
            stdio: ['ignore', 'pipe', 'pipe'],
        }),
    );
    const logs = [];
    lineCollector(proc.stdout, logs, '[upstream] ');
    lineCollector(proc.stderr, logs, '[upstream] ');
    const exited = exitPromise(proc);
    const url = `http://127.0.0.1:${port}`;
    let dead = false;
    exited.then(() => (dead = true));
    await waitFor(
        async () => {
            if (dead) throw new Error(`upstream exited: ${logs.join(' | ')}`);
            const r = await httpGet(`${url}/api/status`, { timeoutMs: 1000 });
            return r.status === 200;
        },
        10000,
        `upstream on ${url}`,
    ).catch((e) => {
        proc.kill('SIGKILL');
        throw e;
    });
    return {
        port,
        url,
        pid: proc.pid,
        proc,
        logs,
        exited,
        kill: (sig = 'SIGKILL') => proc.kill(sig),
        /** SIGTERM (the upstream closes WebSockets with 1001, exits after 1 s); SIGKILL after 5 s. */
        async stop() {
            if (proc.exitCode !== null || proc.signalCode !== null) return exited;
            proc.kill('SIGTERM');
            const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
            const r = await exited;
            clearTimeout(t);
            return r;
        },
    };
}

// ---------------------------------------------------------------- ott-edge
/**
 * Starts ott-edge with a YAML config rendered from defaults merged with `config`:
 *   listen.https/http/admin on 127.0.0.1 with free ports, state_dir in a tmp dir,
 *   upstream = config.upstream (required unless given in env/config), shutdown.delay 0s and
 *   shutdown.grace 5s (so stop() is fast; tests of draining set their own).
 * A key set to null in `config` is left out of the file. `configText` writes that text
 * verbatim instead. `args` are appended after `--config FILE`.
 * Waits until GET /livez on the admin port is 200 (10 s x slow), else throws with stderr.
 * With expectExit: waits for the process to exit (timeoutMs, default 10 s x slow) and
 * resolves to {code, signal, logs, stderr, stdout}.
 */
export async function startEdge({
    config = {},
    env = {},
    args = [],
    expectExit = false,
    configText,
    waitReady = false,
    timeoutMs = 10000,
    noConfigFile = false,
    bin = EDGE_BIN,
} = {}) {
    const dir = tmpDir('ott-edge-run-');
    const [httpsPort, httpPort, adminPort] = [await freePort(), await freePort(), await freePort()];
    const defaults = {
        listen: { https: `127.0.0.1:${httpsPort}`, http: `127.0.0.1:${httpPort}`, admin: `127.0.0.1:${adminPort}` },
        state_dir: path.join(dir, 'state'),
        shutdown: { delay: '0s', grace: '5s' },
        ...(process.env.OTT_EDGE_TEST_LOG_LEVEL ? { log: { level: process.env.OTT_EDGE_TEST_LOG_LEVEL } } : {}),
    };
    const cfg = merge(defaults, config);
    // Ports actually used (a test may override listen.*).
    const portOf = (s) => (typeof s === 'string' && /:(\d+)$/.test(s) ? Number(/:(\d+)$/.exec(s)[1]) : null);
    const ports = {
        httpsPort: portOf(cfg.listen?.https),
        httpPort: portOf(cfg.listen?.http),
        adminPort: portOf(cfg.listen?.admin),
    };
    const configPath = path.join(dir, 'config.yaml');
    writeFileSync(configPath, configText !== undefined ? configText : toYaml(cfg));
    if (!existsSync(bin)) throw new Error(`ott-edge binary not found at ${bin} (set OTT_EDGE_BIN)`);
    const argv = noConfigFile ? [...args] : ['--config', configPath, ...args];
    const proc = track(spawn(bin, argv, { env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'], cwd: dir }));
    const logs = [];
    const out = [];
    lineCollector(proc.stderr, logs, '[edge] ', (line) => {
        if (SANITIZER_RE.test(line) && !sanitizerHits.some((h) => h.pid === proc.pid)) sanitizerHits.push({ pid: proc.pid, logs });
    });
    lineCollector(proc.stdout, out, '[edge:out] ');
    const exited = exitPromise(proc);
    let exitInfo = null;
    exited.then((r) => (exitInfo = r));

    if (expectExit) {
        const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs * slow);
        const r = await exited;
        clearTimeout(t);
        await sleep(20); // let the last stderr chunk arrive
        return { ...r, logs, stderr: logs.join('\n'), stdout: out.join('\n'), configPath, dir, timedOut: r.signal === 'SIGKILL' };
    }

    const edge = {
        ...ports,
        pid: proc.pid,
        proc,
        logs,
        stdoutLines: out,
        configPath,
        dir,
        config: cfg,
        url: `https://127.0.0.1:${ports.httpsPort}`,
        exited,
        get exitInfo() {
            return exitInfo;
        },
        stderr: () => logs.join('\n'),
        /** stderr lines before any sanitizer report (for log-format assertions). */
        appLogs: () => {
            const i = logs.findIndex((l) => SANITIZER_RE.test(l) || /^={20,}$/.test(l));
            return i < 0 ? logs.slice() : logs.slice(0, i);
        },
        kill: (sig = 'SIGTERM') => proc.kill(sig),
        async waitExit(ms = 10000) {
            return withTimeout(exited, ms * slow, `ott-edge (pid ${proc.pid}) to exit; stderr:\n${logs.slice(-30).join('\n')}`);
        },
        /** Resolves with the first stderr line (already seen or future) matching re. */
        async waitForLog(re, ms = 5000) {
            return waitFor(() => logs.find((l) => re.test(l)), ms, `log line ${re}; stderr so far:\n${logs.slice(-30).join('\n')}`);
        },
        /** SIGTERM, wait (30 s), then SIGKILL. Resolves to {code, signal}. */
        async stop() {
            if (exitInfo) return exitInfo;
            proc.kill('SIGTERM');
            const t = setTimeout(() => proc.kill('SIGKILL'), 30000);
            const r = await exited;
            clearTimeout(t);
            return r;
        },
    };

    if (ports.adminPort) {
        try {
            await waitFor(
                async () => {
                    if (exitInfo) throw new Error(`ott-edge exited (${JSON.stringify(exitInfo)})`);
                    const r = await httpGet(`http://127.0.0.1:${ports.adminPort}/${waitReady ? 'readyz' : 'livez'}`, { timeoutMs: 1000 });
                    return r.status === 200;
                },
                timeoutMs,
                `ott-edge ${waitReady ? '/readyz' : '/livez'} on admin port ${ports.adminPort}`,
            );
        } catch (e) {
            proc.kill('SIGKILL');
            await sleep(50);
            throw new Error(`${e.message}\n--- ott-edge stderr ---\n${logs.join('\n')}\n--- config ---\n${readFileSync(configPath, 'utf8')}`);
        }
    }
    return edge;
}

/** Runs ott-edge once (check-config, --help, --version, bad configs) and collects its output. */
export function runEdge(args, { env = {}, timeoutMs = 10000, cwd } = {}) {
    return runProcess(EDGE_BIN, args, { env: childEnv(env), timeoutMs: timeoutMs * slow, cwd });
}

/** Runs any program (stdin closed unless input given); never rejects on a non-zero exit. */
export function runProcess(file, args, { env, timeoutMs = 15000, cwd, input } = {}) {
    return new Promise((resolve, reject) => {
        const proc = track(spawn(file, args, { env: env || process.env, cwd, stdio: ['pipe', 'pipe', 'pipe'] }));
        let stdout = '';
        let stderr = '';
        proc.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
        proc.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
        proc.on('error', reject);
        if (input !== undefined) proc.stdin.end(input);
        else proc.stdin.end();
        let timedOut = false;
        const t = setTimeout(() => {
            timedOut = true;
            proc.kill('SIGKILL');
        }, timeoutMs);
        proc.on('close', (code, signal) => {
            clearTimeout(t);
            resolve({ code, signal, stdout, stderr, timedOut });
        });
    });
}

// ---------------------------------------------------------------- clients
/** Runs /usr/bin/curl -sS ARGS; never rejects on a curl error (look at code). */
export function curl(args, { timeoutMs = 15000 } = {}) {
    return runProcess('/usr/bin/curl', ['-sS', ...args], { timeoutMs: timeoutMs * slow });
}

export function httpGet(url, { headers = {}, method = 'GET', body, timeoutMs = 5000 } = {}) {
    return new Promise((resolve, reject) => {
        const u = new URL(url);
        const mod = u.protocol === 'https:' ? https : http;
        const req = mod.request(
            u,
            { method, headers, agent: false, rejectUnauthorized: false, timeout: timeoutMs * slow },
            (res) => {
                const chunks = [];
                res.on('data', (c) => chunks.push(c));
                res.on('end', () =>
                    resolve({ status: res.statusCode, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks).toString() }),
                );
                res.on('error', reject);
            },
        );
        req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs * slow} ms: ${method} ${url}`)));
        req.on('error', reject);
        req.end(body);
    });
}

/** HTTPS/1.1 request to 127.0.0.1:port without certificate checks (unless ca given). */
export function httpsGet(port, pathname, { headers = {}, method = 'GET', body, servername, ca, timeoutMs = 5000 } = {}) {
    return new Promise((resolve, reject) => {
        const req = https.request(
            {
                host: '127.0.0.1',
                port,
                path: pathname,
                method,
                headers,
                servername,
                ca,
                rejectUnauthorized: !!ca,
                agent: false,
                timeout: timeoutMs * slow,
            },
            (res) => {
                const chunks = [];
                res.on('data', (c) => chunks.push(c));
                res.on('end', () =>
                    resolve({ status: res.statusCode, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks).toString() }),
                );
                res.on('error', reject);
            },
        );
        req.on('timeout', () => req.destroy(new Error(`timeout: ${method} ${pathname}`)));
        req.on('error', reject);
        req.end(body);
    });
}

export async function adminGet(edge, pathname) {
    const r = await httpGet(`http://127.0.0.1:${edge.adminPort}${pathname}`);
    return { status: r.status, headers: r.headers, body: r.body };
}

/** Opens an HTTP/2 session to 127.0.0.1:port (no certificate checks unless ca given). */
export function h2Connect(port, { servername, ca, timeoutMs = 5000 } = {}) {
    return withTimeout(
        new Promise((resolve, reject) => {
            const s = http2.connect(`https://127.0.0.1:${port}`, { servername, ca, rejectUnauthorized: !!ca });
            s.once('connect', () => resolve(s));
            s.once('error', reject);
        }),
        timeoutMs * slow,
        `h2 connect to ${port}`,
    ).then((s) => {
        s.on('error', () => {});
        return s;
    });
}

export function h2Request(session, pathname, { headers = {}, method = 'GET', body, timeoutMs = 5000 } = {}) {
    return withTimeout(
        new Promise((resolve, reject) => {
            const req = session.request({ ':path': pathname, ':method': method, ...headers });
            let respHeaders;
            const chunks = [];
            req.on('response', (h) => (respHeaders = h));
            req.on('data', (c) => chunks.push(c));
            req.on('end', () => resolve({ status: respHeaders?.[':status'], headers: respHeaders, body: Buffer.concat(chunks).toString() }));
            req.on('error', reject);
            req.end(body);
        }),
        timeoutMs * slow,
        `h2 ${method} ${pathname}`,
    );
}

/**
 * Opens a WebSocket and buffers its messages. next(ms) resolves with the next message as a
 * string; `closed` resolves with {code, reason} when it closes.
 */
export function openWs(url, { headers = {}, ca, timeoutMs = 5000, servername } = {}) {
    const ws = new WebSocket(url, { headers, ca, rejectUnauthorized: !!ca, servername, handshakeTimeout: timeoutMs * slow });
    const queue = [];
    const waiters = [];
    let closeInfo = null;
    const closed = new Promise((resolve) =>
        ws.on('close', (code, reason) => {
            closeInfo = { code, reason: reason.toString() };
            resolve(closeInfo);
            for (const w of waiters.splice(0)) w.reject(new Error(`websocket closed (${code} ${reason})`));
        }),
    );
    ws.on('message', (data) => {
        const s = data.toString();
        const w = waiters.shift();
        if (w) w.resolve(s);
        else queue.push(s);
    });
    const handle = {
        ws,
        closed,
        get closeInfo() {
            return closeInfo;
        },
        next(ms = 5000) {
            if (queue.length) return Promise.resolve(queue.shift());
            if (closeInfo) return Promise.reject(new Error(`websocket closed (${closeInfo.code})`));
            return withTimeout(new Promise((resolve, reject) => waiters.push({ resolve, reject })), ms * slow, 'websocket message');
        },
        async nextJson(ms) {
            return JSON.parse(await handle.next(ms));
        },
        send: (x) => ws.send(typeof x === 'string' || Buffer.isBuffer(x) ? x : JSON.stringify(x)),
        close: (code = 1000) => ws.close(code),
    };
    return withTimeout(
        new Promise((resolve, reject) => {
            ws.once('open', () => resolve(handle));
            ws.once('error', reject);
            ws.once('unexpected-response', (req, res) => reject(new Error(`websocket upgrade refused: HTTP ${res.statusCode}`)));
        }),
        timeoutMs * slow,
        `websocket open ${url}`,
    ).then(
        (h) => {
            ws.on('error', () => {});
            return h;
        },
        (e) => {
            ws.terminate();
            throw e;
        },
    );
}

// ---------------------------------------------------------------- TLS
/** Makes a self-signed EC certificate with openssl. sans: ['DNS:x', 'IP:127.0.0.1'] or bare names. */
export function makeCert({ dir = tmpDir('ott-edge-cert-'), cn = 'localhost', sans = ['localhost', 'IP:127.0.0.1'], days = 30, name = 'cert' } = {}) {
    const certFile = path.join(dir, `${name}.pem`);
    const keyFile = path.join(dir, `${name}.key`);
    const san = sans.map((s) => (/^(DNS|IP):/.test(s) ? s : `DNS:${s}`)).join(',');
    execFileSync(
        'openssl',
        ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile,
            '-days', String(days), '-subj', `/CN=${cn}`, '-addext', `subjectAltName=${san}`],
        { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const pem = readFileSync(certFile, 'utf8');
    const x = new X509Certificate(pem);
    return { certFile, keyFile, pem, key: readFileSync(keyFile, 'utf8'), serial: x.serialNumber, fingerprint256: x.fingerprint256, x509: x };
}

/** Does a fresh TLS handshake and returns what the server presented. */
export function peerCert(port, { servername, alpn = ['h2', 'http/1.1'], timeoutMs = 5000, minVersion, maxVersion } = {}) {
    return withTimeout(
        new Promise((resolve, reject) => {
            const s = tls.connect({ host: '127.0.0.1', port, servername, ALPNProtocols: alpn, rejectUnauthorized: false, minVersion, maxVersion });
            s.once('secureConnect', () => {
                const c = s.getPeerCertificate();
                const r = {
                    serialNumber: c.serialNumber,
                    fingerprint256: c.fingerprint256,
                    subject: c.subject,
                    subjectaltname: c.subjectaltname,
                    valid_to: c.valid_to,
                    alpnProtocol: s.alpnProtocol,
                    protocol: s.getProtocol(),
                    cipher: s.getCipher(),
                };
                s.destroy();
                resolve(r);
            });
            s.once('error', reject);
        }),
        timeoutMs * slow,
        `TLS handshake with ${port}`,
    );
}

function collect(sock, bytes, timeoutMs, connectEvent) {
    return new Promise((resolve, reject) => {
        const chunks = [];
        const t = setTimeout(() => {
            sock.destroy();
            resolve(Buffer.concat(chunks).toString('latin1'));
        }, timeoutMs * slow);
        sock.once(connectEvent, () => sock.write(bytes));
        sock.on('data', (c) => chunks.push(c));
        sock.on('error', (e) => {
            if (chunks.length) return;
            clearTimeout(t);
            if (e.code === 'ECONNRESET' || e.code === 'EPIPE') resolve('');
            else reject(e);
        });
        sock.on('close', () => {
            clearTimeout(t);
            resolve(Buffer.concat(chunks).toString('latin1'));
        });
    });
}

/** Sends raw bytes over TLS (ALPN http/1.1) and returns everything received until close or timeout. */
export function rawTls(port, bytes, { servername, timeoutMs = 3000, alpn = ['http/1.1'] } = {}) {
    const s = tls.connect({ host: '127.0.0.1', port, servername, ALPNProtocols: alpn, rejectUnauthorized: false });
    return collect(s, bytes, timeoutMs, 'secureConnect');
}

/** Sends raw bytes over plain TCP and returns everything received until close or timeout. */
export function rawTcp(port, bytes, { timeoutMs = 3000 } = {}) {
    const s = net.connect({ host: '127.0.0.1', port });
    return collect(s, bytes, timeoutMs, 'connect');
}

/** Headers from /debug/headers as a list of [name, value] with lower-cased names. */
export function headerPairs(debugJson) {
    const j = typeof debugJson === 'string' ? JSON.parse(debugJson) : debugJson;
    return j.headers.map(([k, v]) => [k.toLowerCase(), v]);
}
/** All values of one header (lower-case name) in /debug/headers output. */
export function headerValues(debugJson, name) {
    return headerPairs(debugJson)
        .filter(([k]) => k === name)
        .map(([, v]) => v);
}
