// The single-container entrypoint mode, for real: `ott-edge [options] -- COMMAND ...`.
// ott-edge starts COMMAND as its child, proxies to it, forwards signals, reaps orphaned
// grandchildren (child subreaper), stops the child after its own drain on SIGTERM and exits
// with the child's status; a child that ends on its own (or crashes) ends ott-edge non-zero.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { startEdge, freePort, httpsGet, openWs, sleep, waitFor, tmpDir, slow, UPSTREAM_SCRIPT } from '../lib/harness.mjs';

const NODE = process.execPath;

/** The child's pid from ott-edge's "child_started ... pid=N" log line. */
async function childPid(edge) {
    const line = await edge.waitForLog(/child_started/, 5000);
    const m = /pid[=":\s]+(\d+)/.exec(line);
    assert.ok(m, `no pid in: ${line}`);
    return Number(m[1]);
}

function alive(pid) {
    try {
        process.kill(pid, 0);
        return true;
    } catch {
        return false;
    }
}

/** Processes whose parent is ppid: [{pid, state, cmdline}] (from /proc/<pid>/stat). */
function childrenOf(ppid) {
    const out = [];
    for (const name of readdirSync('/proc')) {
        if (!/^\d+$/.test(name)) continue;
        try {
            const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
            const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
            if (Number(rest[1]) !== ppid) continue;
            let cmdline = '';
            try {
                cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
            } catch {}
            out.push({ pid: Number(name), state: rest[0], cmdline });
        } catch {}
    }
    return out;
}

/** A child that appends every signal it gets to a file; exits 3 on SIGTERM. */
function signalLogger() {
    const dir = tmpDir('ott-edge-sig-');
    const script = path.join(dir, 'sig-logger.cjs');
    const logFile = path.join(dir, 'signals.log');
    writeFileSync(
        script,
        `const fs = require('fs');
const f = process.argv[2];
for (const s of ['SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGTERM']) {
    process.on(s, () => {
        fs.appendFileSync(f, s + '\\n');
        if (s === 'SIGTERM') process.exit(3);
    });
}
fs.appendFileSync(f, 'READY\\n');
setInterval(() => {}, 1000);
`,
    );
    const lines = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').filter(Boolean) : []);
    return { argv: [NODE, script, logFile], lines };
}

test('proxies to the supervised OTT-like upstream; SIGTERM drains first, then stops the child; exit status is the child\'s', async () => {
    const port = await freePort();
    const edge = await startEdge({
        config: { upstream: `http://127.0.0.1:${port}`, shutdown: { delay: '1s', grace: '5s' } },
        env: { OTT_UPSTREAM_VERBOSE: '1' },
        args: ['--', NODE, UPSTREAM_SCRIPT, '--port', String(port), '--host', '127.0.0.1'],
    });
    const pid = await childPid(edge);
    assert.ok(childrenOf(edge.pid).some((c) => c.pid === pid), 'the upstream is a direct child of ott-edge');

    await waitFor(async () => (await httpsGet(edge.httpsPort, '/api/status')).status === 200, 10000, 'the upstream through ott-edge');
    const r = await httpsGet(edge.httpsPort, '/api/status');
    assert.match(r.body, /"status":\s*"ok"/);
    const ws = await openWs(`wss://127.0.0.1:${edge.httpsPort}/api/room/supervise`);

    const t0 = Date.now();
    edge.kill('SIGTERM');
    // During shutdown.delay ott-edge still serves and the child has not been told to stop.
    await sleep(500);
    assert.ok(alive(pid), 'child still running during shutdown.delay');
    assert.ok(!edge.logs.some((l) => /ott-upstream SIGTERM/.test(l)), 'child got SIGTERM before the drain');

    const { code, signal } = await edge.waitExit(30000);
    const elapsed = Date.now() - t0;
    assert.equal(signal, null);
    assert.equal(code, 0, `ott-edge exits with the upstream's status (0); stderr:\n${edge.stderr()}`);
    assert.ok(elapsed >= 1000, `the child was stopped only after shutdown.delay (${elapsed} ms)`);
    assert.ok(edge.logs.some((l) => /ott-upstream SIGTERM/.test(l)), `the child got SIGTERM; stderr:\n${edge.stderr()}`);
    assert.ok(!alive(pid), 'child is gone');
    await Promise.race([ws.closed, sleep(5000 * slow)]);
    assert.ok(ws.closeInfo, 'the WebSocket was closed');
});

test('SIGUSR1 is forwarded to the child; SIGHUP reloads ott-edge and SIGUSR2 upgrades it, never reaching the child; SIGTERM ends with the child\'s exit code', async () => {
    const child = signalLogger();
    const edge = await startEdge({
        config: { upstream: `http://127.0.0.1:${await freePort()}`, shutdown: { delay: '0s', grace: '5s' } },
        args: ['--', ...child.argv],
    });
    await childPid(edge);
    await waitFor(() => child.lines().includes('READY'), 10000, 'the child to start');
    edge.kill('SIGUSR1');
    await waitFor(() => child.lines().includes('SIGUSR1'), 5000, 'SIGUSR1 at the child');
    // SIGHUP would end a Node application that does not handle it: ott-edge takes it itself
    edge.kill('SIGHUP');
    await edge.waitForLog(/reloaded generation=2 /);
    edge.kill('SIGUSR2');
    await edge.waitForLog(/upgrade_done new_pid=\d+/, 30000);
    await sleep(300);
    assert.equal(edge.exitInfo, null, 'ott-edge itself keeps running after HUP/USR1/USR2');

    edge.kill('SIGTERM');
    const { code } = await edge.waitExit(20000);
    assert.deepEqual(child.lines(), ['READY', 'SIGUSR1', 'SIGTERM']);
    assert.equal(code, 3, `ott-edge exits with the child's code 3; stderr:\n${edge.stderr()}`);
});

test('orphaned grandchildren are re-parented to ott-edge and reaped (no zombies)', async () => {
    // The shell starts three background sleeps in subshells that exit at once: the sleeps
    // are orphaned, and since ott-edge is a child subreaper they become its children.
    const script = 'for i in 1 2 3; do (sleep 2 &); done; exec sleep 60';
    const edge = await startEdge({
        config: { upstream: `http://127.0.0.1:${await freePort()}`, shutdown: { delay: '0s', grace: '2s' } },
        args: ['--', 'sh', '-c', script],
    });
    const pid = await childPid(edge);
    const orphans = await waitFor(
        () => {
            const o = childrenOf(edge.pid).filter((c) => c.cmdline === 'sleep 2');
            return o.length === 3 ? o : null;
        },
        3000,
        'three orphaned "sleep 2" re-parented to ott-edge',
    );
    // They exit after 2 s. Until reaped, an exited process stays in /proc as a zombie of
    // its parent (ott-edge); only ott-edge can reap it, so /proc/<pid> vanishing = reaped.
    await waitFor(() => orphans.every((o) => !existsSync(`/proc/${o.pid}`)), 8000, 'the orphans to be reaped');
    const left = childrenOf(edge.pid);
    assert.deepEqual(left.filter((c) => c.state === 'Z'), [], `zombies under ott-edge: ${JSON.stringify(left)}`);
    assert.ok(left.some((c) => c.pid === pid), 'the direct child is still running');
    assert.equal(edge.exitInfo, null, 'a grandchild exiting does not end ott-edge');

    edge.kill('SIGTERM');
    const { code } = await edge.waitExit(20000);
    assert.equal(code, 128 + 15, 'sleep killed by SIGTERM -> 143');
});

test('a child that exits on its own ends ott-edge with the child\'s code, logged', async () => {
    const r = await startEdge({
        config: { upstream: `http://127.0.0.1:${await freePort()}` },
        args: ['--', 'sh', '-c', 'sleep 0.5; exit 7'],
        expectExit: true,
        timeoutMs: 15000,
    });
    assert.equal(r.timedOut, false, r.stderr);
    assert.equal(r.code, 7, r.stderr);
    assert.match(r.stderr, /child_exited.*status[=":\s]+7/);
});

test('a child that exits 0 before ott-edge was asked to stop is still fatal (exit 1)', async () => {
    const r = await startEdge({
        config: { upstream: `http://127.0.0.1:${await freePort()}` },
        args: ['--', 'sh', '-c', 'sleep 0.3; exit 0'],
        expectExit: true,
        timeoutMs: 15000,
    });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /child_exited/);
});

test('a crashed child (SIGKILL) ends ott-edge non-zero (128+9)', async () => {
    const port = await freePort();
    const edge = await startEdge({
        config: { upstream: `http://127.0.0.1:${port}` },
        args: ['--', NODE, UPSTREAM_SCRIPT, '--port', String(port), '--host', '127.0.0.1'],
    });
    const pid = await childPid(edge);
    await waitFor(async () => (await httpsGet(edge.httpsPort, '/api/status')).status === 200, 10000, 'the upstream through ott-edge');
    process.kill(pid, 'SIGKILL');
    const { code } = await edge.waitExit(20000);
    assert.equal(code, 137, `stderr:\n${edge.stderr()}`);
    assert.match(edge.stderr(), /child_exited/);
});

test('a command that cannot be started is a startup error', async () => {
    const r = await startEdge({
        config: { upstream: `http://127.0.0.1:${await freePort()}` },
        args: ['--', '/nonexistent/ott-edge-test-command'],
        expectExit: true,
    });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /nonexistent\/ott-edge-test-command/);
});
