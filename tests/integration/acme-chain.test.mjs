// acme-chain — acme.preferred_chain: pebble offers alternate chains (PEBBLE_ALTERNATE_ROOTS)
// through Link: rel="alternate"; ott-edge serves the one whose top issuer CN matches.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { startEdge, slow } from '../lib/harness.mjs';
import { startPebble, edgeConfigFor, verifiedPeer } from '../lib/pebble.mjs';

const T = 60000 * slow;
const cn = (pem) => /CN=([^\n,]+)/.exec(new X509Certificate(pem).subject)[1];

describe('ACME preferred chain', () => {
    let pebble;
    before(async () => {
        pebble = await startPebble({ slot: 7, env: { PEBBLE_ALTERNATE_ROOTS: '1' } });
    });
    after(async () => {
        await pebble?.stop();
    });

    for (const which of [0, 1]) {
        it(`serves the chain up to root ${which} when acme.preferred_chain names it`, { timeout: T }, async () => {
            const root = await pebble.rootN(which);
            const other = await pebble.rootN(1 - which);
            const edge = await startEdge({
                config: edgeConfigFor(pebble, { acme: { challenges: ['http-01'], preferred_chain: cn(root) } }),
            });
            try {
                await edge.waitForLog(/acme_certificate_installed/, 20000);
                if (which === 1) assert.match(edge.stderr(), /acme_preferred_chain issuer=.* found=true/);
                const peer = await verifiedPeer(pebble.ports.tlsPort, 'a.ott-edge.test', root);
                assert.ok(peer.serialNumber);
                await assert.rejects(verifiedPeer(pebble.ports.tlsPort, 'a.ott-edge.test', other), /issuer|certificate/i);
            } finally {
                await edge.stop();
            }
        });
    }
});
