// acme-badnonce — pebble rejects half of all good nonces with badNonce
// (PEBBLE_WFE_NONCEREJECT=50); ott-edge retries with the fresh nonce from the error
// response (RFC 8555 §6.5) and still gets its certificate, with real validation.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEdge, slow } from '../lib/harness.mjs';
import { startPebble, edgeConfigFor, verifiedPeer } from '../lib/pebble.mjs';

const T = 60000 * slow;

describe('ACME badNonce retry', () => {
    let pebble;
    before(async () => {
        pebble = await startPebble({ slot: 2, env: { PEBBLE_WFE_NONCEREJECT: '50' } });
    });
    after(async () => {
        await pebble?.stop();
    });

    it('issues a certificate although half the nonces are rejected', { timeout: T }, async () => {
        const edge = await startEdge({ config: edgeConfigFor(pebble, { acme: { challenges: ['http-01'] } }) });
        try {
            const line = await edge.waitForLog(/acme_certificate_installed/, 30000);
            const retries = Number(/bad_nonce_retries=(\d+)/.exec(line)[1]);
            // ~12 signed requests per order at 50 %: zero rejections is (1/2)^12
            assert.ok(retries > 0, `no badNonce was retried (${line})`);
            assert.match(pebble.logs(), /Configured to reject 50% of good nonces/);
            assert.doesNotMatch(edge.stderr(), /acme_failed/);
            const peer = await verifiedPeer(pebble.ports.tlsPort, 'a.ott-edge.test', await pebble.root());
            assert.match(peer.issuer.CN, /Pebble Intermediate/);
        } finally {
            await edge.stop();
        }
    });
});
