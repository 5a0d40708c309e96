// acme-ca-down — the ACME server is down when ott-edge starts: the self-signed certificate
// is served at once, /readyz is 503, orders are retried with growing delays (persisted in
// state_dir so a restart does not retry at once), and the certificate arrives once the CA
// is up.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { startEdge, startUpstream, adminGet, slow, peerCert, tmpDir, waitFor } from '../lib/harness.mjs';
import { startPebble, edgeConfigFor, verifiedPeer } from '../lib/pebble.mjs';

const T = 60000 * slow;

describe('ACME server down at start', () => {
    let pebble, up, stateDir;
    before(async () => {
        pebble = await startPebble({ slot: 5, start: false });
        up = await startUpstream();
        stateDir = path.join(tmpDir('ott-edge-acme-'), 'state');
    });
    after(async () => {
        await pebble?.stop();
        await up?.stop();
    });
    const config = () => ({ ...edgeConfigFor(pebble, { acme: { challenges: ['http-01'], retry_base: '400ms' }, upstream: up.url }), state_dir: stateDir }); // first retry after 0.4 s (default 1m)
    const delays = (edge) => edge.logs.filter((l) => /acme_failed/.test(l)).map((l) => Number(/retry_in_s=([\d.]+)/.exec(l)[1]));

    it('serves the self-signed certificate, is not ready, and retries with growing delays', { timeout: T }, async () => {
        const edge = await startEdge({ config: config() });
        try {
            const p = await peerCert(pebble.ports.tlsPort, { servername: 'a.ott-edge.test' });
            assert.match(JSON.stringify(p.subject), /self-signed/);
            assert.equal((await adminGet(edge, '/readyz')).status, 503);
            await waitFor(() => delays(edge).length >= 3, 15000, 'three failed attempts');
            const d = delays(edge);
            assert.ok(d[0] >= 0.4 && d[1] > d[0] && d[2] > d[1], `delays do not grow: ${d}`);
            assert.match(edge.stderr(), /acme_failed error="GET https:\/\/127\.0\.0\.1:\d+\/dir: [^"]*(connect|refused)/i);
            assert.equal((await adminGet(edge, '/readyz')).status, 503);
            const m = (await adminGet(edge, '/metrics')).body;
            assert.match(m, /ott_edge_acme_renewals_total\{result="failed"\} [3-9]/);
            const st = JSON.parse(readFileSync(path.join(stateDir, 'acme-state.json'), 'utf8'));
            assert.ok(st.failures >= 3 && st.next_attempt > Date.now() / 1000 - 1, JSON.stringify(st));
            assert.match(st.last_error, /dir/);
        } finally {
            await edge.stop();
        }
    });

    it('a restart keeps the backoff (no immediate retry) and gets the certificate once the CA is up', { timeout: T }, async () => {
        const st = JSON.parse(readFileSync(path.join(stateDir, 'acme-state.json'), 'utf8'));
        const edge = await startEdge({ config: config() });
        try {
            await edge.waitForLog(new RegExp(`acme_backoff_restored failures=${st.failures} `), 5000);
            const first = await edge.waitForLog(/acme_next_attempt|acme_order_start/, 5000);
            if (/acme_next_attempt/.test(first)) assert.equal(Number(/at=(\d+)/.exec(first)[1]), st.next_attempt);
            else assert.ok(Date.now() / 1000 >= st.next_attempt - 1, 'retried before the persisted next attempt');

            await pebble.start();
            await edge.waitForLog(/acme_certificate_installed/, 30000);
            const peer = await verifiedPeer(pebble.ports.tlsPort, 'b.ott-edge.test', await pebble.root());
            assert.match(peer.issuer.CN, /Pebble Intermediate/);
            await waitFor(async () => (await adminGet(edge, '/readyz')).status === 200, 10000, '/readyz 200');
            const after = JSON.parse(readFileSync(path.join(stateDir, 'acme-state.json'), 'utf8'));
            assert.equal(after.failures, 0);
        } finally {
            await edge.stop();
        }
    });
});
