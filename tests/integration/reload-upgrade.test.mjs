// reload-upgrade — binary upgrades (SIGUSR2) twice in a row under a counted HTTP/1.1 +
// HTTP/2 load (a worker opening a new connection per request among them) and 200 open
// WebSockets: no request fails, no connection is refused, every WebSocket keeps echoing on
// the process that accepted it, which exits once they are closed; the new binary file
// (replaced on disk before the upgrade, as a package upgrade does) is what runs; its
// ACME state carries over (no new order at pebble). Then the entrypoint mode: the process
// that supervises the application stays, each upgrade starts a new ott-edge under it and
// retires the previous one, SIGUSR2 sent to the serving child is passed up, SIGHUP reaches
// the serving child, SIGTERM ends everything cleanly.
//
// Ports: pebble slot 15 (ACME 14150, ott-edge on 5630/5631).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, renameSync, readlinkSync, chmodSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { startEdge, startUpstream, adminGet, openWs, slow, tmpDir, waitFor, sleep, freePort, EDGE_BIN, UPSTREAM_SCRIPT } from '../lib/harness.mjs';
import { startPebble } from '../lib/pebble.mjs';
import { startLoad, openWebSockets } from '../lib/load.mjs';

const T = 120000 * slow;
const NAME = 'ott.upgrade.test';

const alive = (pid) => {
    try {
        process.kill(pid, 0);
        return true;
    } catch {
        return false;
    }
};
const started = new Set();
const pidsFrom = (edge) => edge.logs.filter((l) => /upgrade_done /.test(l)).map((l) => Number(/new_pid=(\d+)/.exec(l)[1]));
const statusPid = async (edge) => JSON.parse((await adminGet(edge, '/status.json')).body).pid;
/** Sends SIGUSR2 to pid; resolves to the new process's pid once it serves. */
async function upgrade(edge, pid) {
    const n = pidsFrom(edge).length;
    process.kill(pid, 'SIGUSR2');
    await waitFor(() => pidsFrom(edge).length > n, 30000, `upgrade_done after SIGUSR2 to ${pid}`);
    const np = pidsFrom(edge)[n];
    started.add(np);
    await waitFor(async () => (await statusPid(edge)) === np, 5000, `the admin listener answered by ${np}`);
    return np;
}
function copyBinary(dir) {
    mkdirSync(dir, { recursive: true });
    const bin = path.join(dir, 'ott-edge');
    copyFileSync(EDGE_BIN, bin);
    chmodSync(bin, 0o755);
    return bin;
}
/** Replaces the file the way a package manager does: a new file renamed over the old. */
function replaceBinary(bin) {
    copyFileSync(EDGE_BIN, `${bin}.new`);
    chmodSync(`${bin}.new`, 0o755);
    renameSync(`${bin}.new`, bin);
}

after(() => {
    for (const pid of started) if (alive(pid)) process.kill(pid, 'SIGKILL');
});

describe('binary upgrade, standalone', () => {
    let pebble, up, edge, load, wss;
    before(async () => {
        pebble = await startPebble({ slot: 15 });
        up = await startUpstream({ env: { OTT_UPSTREAM_PING_MS: '0' } });
    });
    after(async () => {
        await load?.stop();
        wss?.closeAll();
        await edge?.stop();
        await pebble?.stop();
        await up?.stop();
    });

    it('two upgrades in a row: the new binary serves, nothing fails, WebSockets stay where they are', { timeout: T }, async () => {
        const bin = copyBinary(path.join(tmpDir('ott-edge-upgrade-'), 'bin'));
        edge = await startEdge({
            bin,
            config: { listen: pebble.edgeListen(), acme: pebble.edgeAcmeConfig(), domains: [NAME], upstream: up.url, shutdown: { upgrade_grace: '1h' } },
        });
        await edge.waitForLog(/acme_certificate_installed /, 30000);
        const orders = pebble.orderCount();
        load = startLoad({ port: edge.httpsPort, servername: NAME });
        wss = await openWebSockets(openWs, `wss://127.0.0.1:${edge.httpsPort}`, 200, { servername: NAME });
        await sleep(500);

        replaceBinary(bin);
        assert.match(readlinkSync(`/proc/${edge.pid}/exe`), / \(deleted\)$/, 'the running file was replaced');
        const p1 = await upgrade(edge, edge.pid);
        assert.equal(readlinkSync(`/proc/${p1}/exe`), bin, 'the new process runs the new file');
        await edge.waitForLog(/retiring /);
        await sleep(1000);
        const p2 = await upgrade(edge, p1);
        // p1 holds no WebSocket: it ends as soon as its requests are done
        await waitFor(() => !alive(p1), 15000, `the first upgraded process ${p1} to exit`);
        await sleep(1000);

        await wss.check('after-upgrades');
        assert.ok(alive(edge.pid), 'the first process keeps its WebSockets');
        const s = await load.stop();
        load = null;
        console.log(`# load: ${s.ok} ok, ${s.retried} retried as HTTP allows, ${s.failed} failed`);
        assert.ok(s.ok > 300, `requests done: ${s.ok}`);
        assert.equal(s.failed, 0, `failed requests: ${JSON.stringify(s.errors)}`);
        assert.equal(pebble.orderCount(), orders, 'the new processes use the stored certificate: no new order');
        const m = (await adminGet(edge, '/metrics')).body;
        assert.match(m, /ott_edge_certificate_self_signed 0/);
        assert.equal((await adminGet(edge, '/readyz')).status, 200);

        // the WebSockets closed by their clients: the first process has nothing left and exits 0
        wss.closeAll();
        wss = null;
        const r = await edge.waitExit(15000);
        assert.equal(r.code, 0);
        assert.ok(alive(p2));
        process.kill(p2, 'SIGTERM');
        await waitFor(() => !alive(p2), 15000, `${p2} to exit on SIGTERM`);
        assert.match(edge.stderr(), /info stopped exit_code=0/);
    });
});

describe('binary upgrade, entrypoint mode (the supervisor stays)', () => {
    let edge, load, wss;
    after(async () => {
        await load?.stop();
        wss?.closeAll();
        await edge?.stop();
    });

    it('upgrades run under the supervisor; SIGHUP and SIGUSR2 reach the right process; SIGTERM ends all', { timeout: T }, async () => {
        const appPort = await freePort();
        edge = await startEdge({
            config: { upstream: `http://127.0.0.1:${appPort}`, shutdown: { upgrade_grace: '1h' } },
            args: ['--', process.execPath, UPSTREAM_SCRIPT, '--port', String(appPort)],
            env: { OTT_UPSTREAM_PING_MS: '0' },
        });
        const sup = edge.pid;
        await waitFor(async () => (await adminGet(edge, '/readyz')).status === 200, 10000, 'ready');
        load = startLoad({ port: edge.httpsPort, servername: 'localhost' });
        wss = await openWebSockets(openWs, `wss://127.0.0.1:${edge.httpsPort}`, 50, { servername: 'localhost' });

        const c1 = await upgrade(edge, sup);
        await sleep(500);
        const c2 = await upgrade(edge, c1); // sent to the serving child: passed up to the supervisor
        await edge.waitForLog(new RegExp(`retired_process_exited pid=${c1} `), 15000);
        const c3 = await upgrade(edge, sup);
        await edge.waitForLog(new RegExp(`retired_process_exited pid=${c2} `), 15000);
        assert.ok(alive(sup) && alive(c3));

        process.kill(sup, 'SIGHUP'); // reaches the serving child, not the application
        await waitFor(async () => JSON.parse((await adminGet(edge, '/status.json')).body).config.generation === 2, 10000, 'the child reloaded');
        await wss.check('entrypoint');
        const s = await load.stop();
        load = null;
        console.log(`# entrypoint load: ${s.ok} ok, ${s.retried} retried as HTTP allows, ${s.failed} failed`);
        assert.equal(s.failed, 0, `failed requests: ${JSON.stringify(s.errors)}`);
        assert.ok(s.ok > 200, `requests done: ${s.ok}`);

        const r = await (edge.stop());
        assert.equal(r.code, 0, edge.stderr().split('\n').slice(-20).join('\n'));
        assert.ok(!alive(c3), 'the serving child ended with the supervisor');
        assert.match(edge.stderr(), /child_started /);
        assert.doesNotMatch(edge.stderr(), /serving_process_exited|upgrade_failed/);
    });
});
