// acme-failures — what goes wrong and how it is reported: an unwritable state_dir stops
// the start with a clear error; a failing TLS-ALPN-01 validation is logged with its problem
// document and the next challenge type (HTTP-01) is tried; when every validation fails the
// order is retried with backoff.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, chmodSync } from 'node:fs';
import path from 'node:path';
import { startEdge, adminGet, slow, tmpDir, freePort, waitFor } from '../lib/harness.mjs';
import { startPebble, edgeConfigFor, verifiedPeer } from '../lib/pebble.mjs';

const T = 60000 * slow;

describe('ACME failures', () => {
    let pebble;
    before(async () => {
        pebble = await startPebble({ slot: 6 });
    });
    after(async () => {
        await pebble?.stop();
    });

    it('refuses to start with an unwritable state_dir, saying so', { timeout: T }, async () => {
        let dir = '/sys/kernel'; // not writable even for root
        if (process.getuid && process.getuid() !== 0) {
            dir = path.join(tmpDir('ott-edge-ro-'), 'state');
            mkdirSync(dir);
            chmodSync(dir, 0o500);
        }
        const r = await startEdge({ config: { ...edgeConfigFor(pebble), state_dir: dir }, expectExit: true });
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, new RegExp(`state_dir: state directory ${dir} is not writable \\((Permission denied|Read-only file system)\\)`));
        assert.doesNotMatch(pebble.logs(), /sign-me-up|order-plz/, 'an ACME call was made before the check');
    });

    it('logs the failed tls-alpn-01 validation and falls back to http-01', { timeout: T }, async () => {
        // HTTPS is not on pebble's tlsPort, so TLS-ALPN-01 cannot validate; HTTP-01 can
        const cfg = edgeConfigFor(pebble, { acme: { challenges: ['tls-alpn-01', 'http-01'] } });
        cfg.listen = { ...cfg.listen, https: `127.0.0.1:${await freePort()}` };
        const edge = await startEdge({ config: cfg });
        try {
            await edge.waitForLog(/acme_certificate_installed/, 30000);
            const logs = edge.stderr();
            assert.match(logs, /error acme_problem step=validation name=[ab]\.ott-edge\.test challenge=tls-alpn-01 type=urn:ietf:params:acme:error:\w+ detail="[^"]+"/);
            assert.match(logs, /acme_challenge_fallback failed=tls-alpn-01 next=http-01/);
            assert.match(logs, /acme_authorization_valid name=a\.ott-edge\.test type=http-01/);
            assert.equal(pebble.orderCount(), 2); // the failed order and the one that worked
            const peer = await verifiedPeer(Number(/:(\d+)$/.exec(cfg.listen.https)[1]), 'a.ott-edge.test', await pebble.root());
            assert.match(peer.issuer.CN, /Pebble Intermediate/);
        } finally {
            await edge.stop();
        }
    });

    it('backs off with growing delays when every challenge type fails', { timeout: T }, async () => {
        const cfg = edgeConfigFor(pebble, { acme: { challenges: ['http-01'], retry_base: '300ms' } });
        cfg.listen = { ...cfg.listen, http: `127.0.0.1:${await freePort()}` }; // pebble cannot reach HTTP-01
        const edge = await startEdge({ config: cfg });
        try {
            await waitFor(() => edge.logs.filter((l) => /acme_failed/.test(l)).length >= 2, 20000, 'two failed orders');
            const fails = edge.logs.filter((l) => /acme_failed/.test(l));
            assert.match(fails[0], /http-01 validation of [ab]\.ott-edge\.test failed: (connection|unauthorized|\w+): /);
            const d = fails.map((l) => Number(/retry_in_s=([\d.]+)/.exec(l)[1]));
            assert.ok(d[1] > d[0], `delays do not grow: ${d}`);
            assert.match(fails[1], /failures=2/);
            const m = (await adminGet(edge, '/metrics')).body;
            assert.match(m, /ott_edge_acme_consecutive_failures [2-9]/);
            assert.equal((await adminGet(edge, '/readyz')).status, 503);
        } finally {
            await edge.stop();
        }
    });
});
