// faults-storage — state_dir is a small tmpfs the test mounts itself (needs root and
// mount permission; skipped with a message otherwise). ott-edge gets a certificate from
// pebble, then at renewal time state_dir is (1) full, (2) full but for one page (the new
// key fits, the new certificate does not: the atomic write must not pair them), (3)
// remounted read-only. Each time: the old cert.pem and cert.key stay byte-for-byte
// intact, the old certificate keeps being served, a clear error is logged and the retry
// delay grows. Then space comes back and the renewal goes through.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { startEdge, startUpstream, adminGet, slow, waitFor, tmpDir, curl } from '../lib/harness.mjs';
import { startPebble, edgeConfigFor, verifiedPeer } from '../lib/pebble.mjs';

const T = 60000 * slow;
const NAME = 'a.ott-edge.test';

function sh(cmd, args) {
    return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}
function tryMount(dir) {
    try {
        sh('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', dir]);
        return null;
    } catch (e) {
        return `${e.stderr?.toString().trim() || e.message}`;
    }
}
const freeBlocks = (dir) => Number(sh('stat', ['-f', '-c', '%a', dir]).trim());
const blockSize = (dir) => Number(sh('stat', ['-f', '-c', '%S', dir]).trim());
/** Fills dir (a tmpfs) completely with dir/fill, then gives `leave` blocks back. */
function fill(dir, leave = 0) {
    const f = path.join(dir, 'fill');
    try {
        sh('dd', ['if=/dev/zero', `of=${f}`, `bs=${blockSize(dir)}`, 'oflag=append', 'conv=notrunc']);
    } catch {} // dd stops with ENOSPC: expected
    if (leave > 0) sh('truncate', ['-s', `-${leave * blockSize(dir)}`, f]);
    return freeBlocks(dir);
}

const mountErr = (() => {
    if (process.getuid?.() !== 0) return 'not root';
    return undefined;
})();

describe('state_dir full or read-only at renewal time', () => {
    let pebble, up, edge, stateDir, mounted = false, skip = mountErr, first, root, disk;
    const acmeFailed = () => edge.logs.filter((l) => /acme_failed/.test(l));
    const snapshot = () => ({ cert: readFileSync(path.join(stateDir, 'cert.pem')), key: readFileSync(path.join(stateDir, 'cert.key')) });
    async function failOnce(what) {
        const n = acmeFailed().length;
        await waitFor(() => acmeFailed().length > n, 20000, `an acme_failed line (${what})`);
        return acmeFailed()[n];
    }
    async function assertIntact(what) {
        const now = snapshot();
        assert.ok(now.cert.equals(disk.cert), `${what}: cert.pem changed on disk`);
        assert.ok(now.key.equals(disk.key), `${what}: cert.key changed on disk`);
        const peer = await verifiedPeer(pebble.ports.tlsPort, NAME, root);
        assert.equal(peer.serialNumber, first.serialNumber, `${what}: another certificate is served`);
        const r = await curl(['-k', '-o', '/dev/null', '-w', '%{http_code}', '--resolve', `${NAME}:${pebble.ports.tlsPort}:127.0.0.1`,
            `https://${NAME}:${pebble.ports.tlsPort}/api/status`]);
        assert.equal(r.stdout, '200', `${what}: request not served`);
        assert.equal((await adminGet(edge, '/readyz')).status, 200, `${what}: /readyz`);
        assert.equal(edge.exitInfo, null, `${what}: ott-edge exited`);
        const stray = readdirSync(stateDir).filter((f) => /\.tmp-|write-probe/.test(f));
        assert.deepEqual(stray, [], `${what}: temp files left in state_dir`);
    }

    before(async () => {
        if (skip) return;
        stateDir = path.join(tmpDir('ott-edge-faults-storage-'), 'state');
        mkdirSync(stateDir);
        const e = tryMount(stateDir);
        if (e) {
            skip = `cannot mount a tmpfs here (${e})`;
            return;
        }
        mounted = true;
        pebble = await startPebble({ slot: 10, validity: 90 });
        up = await startUpstream();
        // renewal due 10 s after issuance (renew_before 80s of a 90 s certificate)
        const cfg = edgeConfigFor(pebble, { upstream: up.url, acme: { challenges: ['http-01'], retry_base: '200ms', renew_before: '80s' } });
        edge = await startEdge({ config: { ...cfg, state_dir: stateDir } });
        await edge.waitForLog(/acme_certificate_installed/, 20000);
        root = await pebble.root();
        first = await verifiedPeer(pebble.ports.tlsPort, NAME, root);
        disk = snapshot();
    });
    after(async () => {
        await edge?.stop();
        await pebble?.stop();
        await up?.stop();
        if (mounted) {
            try {
                sh('umount', [stateDir]);
            } catch (e) {
                sh('umount', ['-l', stateDir]);
            }
        }
    });

    it('full: the old certificate and key stay intact and served; a clear error', { timeout: T }, async (t) => {
        if (skip) return t.skip(`skipped: ${skip}`);
        assert.equal(fill(stateDir), 0);
        const line = await failOnce('state_dir full');
        console.log(`# faults-storage: full: ${line}`);
        assert.match(line, /No space left on device/, 'the error should say the disk is full');
        assert.match(line, new RegExp(stateDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 'the error should name state_dir');
        await failOnce('state_dir still full');
        await assertIntact('full');
    });

    it('one page left: refused before ordering (no certificate issued only to be lost); nothing is mixed up', { timeout: T }, async (t) => {
        if (skip) return t.skip(`skipped: ${skip}`);
        unlinkSync(path.join(stateDir, 'fill'));
        assert.equal(fill(stateDir, 1), 1);
        const issued = pebble.issuedCount();
        const line = await failOnce('one page left');
        console.log(`# faults-storage: one page left: ${line}`);
        // the free-space check runs before any ACME call: nothing is ordered that could not be saved
        assert.match(line, /less than \d+ KiB free/);
        assert.equal(pebble.issuedCount(), issued, 'a certificate was ordered that could not have been stored');
        await assertIntact('one page left');
        if (existsSync(path.join(stateDir, 'cert.key.next'))) console.log('# faults-storage: cert.key.next left behind (ignored at start: it does not match cert.pem)');
    });

    it('read-only: the old certificate and key stay intact and served; a clear error', { timeout: T }, async (t) => {
        if (skip) return t.skip(`skipped: ${skip}`);
        unlinkSync(path.join(stateDir, 'fill'));
        sh('mount', ['-o', 'remount,ro', stateDir]);
        try {
            const line = await failOnce('state_dir read-only');
            console.log(`# faults-storage: read-only: ${line}`);
            assert.match(line, /Read-only file system/);
            assert.match(line, /not writable/);
            await assertIntact('read-only');
        } finally {
            sh('mount', ['-o', 'remount,rw', stateDir]);
        }
    });

    it('backoff grew through the failures, and once writable again the renewal goes through', { timeout: T }, async (t) => {
        if (skip) return t.skip(`skipped: ${skip}`);
        const d = acmeFailed().map((l) => Number(/retry_in_s=([\d.]+)/.exec(l)?.[1]));
        for (let i = 1; i < d.length; i++) assert.ok(d[i] > d[i - 1], `retry delays do not grow: ${d.join(', ')}`);
        await waitFor(() => edge.logs.filter((l) => /acme_certificate_installed/.test(l)).length >= 2, 30000, 'renewal once writable');
        const renewed = await verifiedPeer(pebble.ports.tlsPort, NAME, root);
        assert.notEqual(renewed.serialNumber, first.serialNumber);
        const now = snapshot();
        assert.ok(!now.cert.equals(disk.cert), 'cert.pem was not replaced after the renewal');
        assert.ok(!now.key.equals(disk.key), 'cert.key was not replaced after the renewal');
        assert.equal(existsSync(path.join(stateDir, 'cert.key.next')), false, 'cert.key.next left after a good renewal');
        console.log(`# faults-storage: retry delays (s): ${d.join(', ')}`);
    });
});
