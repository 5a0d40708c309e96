// acme-authz-reuse — a CA may hand back an authorization the account already holds as
// valid (RFC 8555 §7.4: a new order's authorizations can be ones already completed).
// pebble with PEBBLE_AUTHZREUSE=100 always does; the edge must then order with only the
// new name validated: the reused one is logged acme_authorization_reused, no challenge is
// published for it, and the certificate covers both names.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startEdge, slow, tmpDir } from '../lib/harness.mjs';
import { startPebble, edgeConfigFor, verifiedPeer } from '../lib/pebble.mjs';

const T = 60000 * slow;

describe('ACME order whose authorization the CA reuses', () => {
    let pebble;
    before(async () => {
        pebble = await startPebble({ slot: 16, env: { PEBBLE_AUTHZREUSE: '100' } });
    });
    after(async () => {
        await pebble?.stop();
    });

    it('validates only the new name and installs a certificate for both', { timeout: T }, async () => {
        const state = path.join(tmpDir('ott-edge-authz-reuse-'), 'state');
        const config = (domains) => ({ ...edgeConfigFor(pebble, { domains, acme: { challenges: ['http-01'] } }), state_dir: state });

        const one = await startEdge({ config: config(['a.ott-edge.test']) });
        try {
            await one.waitForLog(/acme_certificate_installed/, 20000 * slow);
            assert.match(one.stderr(), /acme_authorization_valid name=a\.ott-edge\.test type=http-01/);
            assert.doesNotMatch(one.stderr(), /acme_authorization_reused/);
        } finally {
            await one.stop();
        }

        // same account (state_dir), one more name: a new order in which a.* is already valid
        const two = await startEdge({ config: config(['a.ott-edge.test', 'b.ott-edge.test']) });
        try {
            await two.waitForLog(/acme_certificate_installed names=\S*b\.ott-edge\.test/, 20000 * slow);
            const logs = two.stderr();
            assert.match(logs, /acme_authorization_reused name=a\.ott-edge\.test/);
            assert.doesNotMatch(logs, /acme_challenge name=a\.ott-edge\.test/);
            assert.match(logs, /acme_authorization_valid name=b\.ott-edge\.test type=http-01/);
            assert.doesNotMatch(logs, /acme_failed/);
            const root = await pebble.root();
            const peer = await verifiedPeer(pebble.ports.tlsPort, 'a.ott-edge.test', root);
            assert.match(peer.subjectaltname, /DNS:a\.ott-edge\.test/);
            assert.match(peer.subjectaltname, /DNS:b\.ott-edge\.test/);
        } finally {
            await two.stop();
        }
    });
});
