// acme-tlsalpn — TLS-ALPN-01 (RFC 8737) on the HTTPS port against pebble with real
// validation: two names, the challenge certificates are served only to acme-tls/1
// handshakes, the issued chain verifies against pebble's root. Also an IP identifier.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEdge, startUpstream, slow, peerCert } from '../lib/harness.mjs';
import { startPebble, edgeConfigFor, verifiedPeer } from '../lib/pebble.mjs';

const T = 60000 * slow;

describe('ACME TLS-ALPN-01 against pebble', () => {
    let pebble, up;
    before(async () => {
        pebble = await startPebble({ slot: 1 });
        up = await startUpstream();
    });
    after(async () => {
        await pebble?.stop();
        await up?.stop();
    });

    it('issues a certificate for two names with tls-alpn-01 only; the chain verifies', { timeout: T }, async () => {
        const edge = await startEdge({
            config: edgeConfigFor(pebble, { acme: { challenges: ['tls-alpn-01'] }, upstream: up.url }),
        });
        try {
            await edge.waitForLog(/acme_certificate_installed/, 20000);
            const logs = edge.stderr();
            assert.match(logs, /acme_challenge name=a\.ott-edge\.test type=tls-alpn-01/);
            assert.match(logs, /acme_challenge name=b\.ott-edge\.test type=tls-alpn-01/);
            assert.match(logs, /acme_authorization_valid name=b\.ott-edge\.test type=tls-alpn-01/);
            assert.doesNotMatch(logs, /type=http-01/);
            const root = await pebble.root();
            for (const name of ['a.ott-edge.test', 'b.ott-edge.test']) {
                const peer = await verifiedPeer(pebble.ports.tlsPort, name, root);
                assert.match(peer.issuer.CN, /Pebble Intermediate/);
            }
            // the challenge certificates are gone once validated: acme-tls/1 is refused now
            await assert.rejects(peerCert(pebble.ports.tlsPort, { servername: 'a.ott-edge.test', alpn: ['acme-tls/1'] }));
            // normal clients never saw a challenge certificate
            const p = await peerCert(pebble.ports.tlsPort, { servername: 'a.ott-edge.test' });
            assert.match(p.subjectaltname, /DNS:b\.ott-edge\.test/);
        } finally {
            await edge.stop();
        }
    });

    it('validates an IP identifier (127.0.0.1) with tls-alpn-01 (SNI is the reverse-DNS name, RFC 8738)', { timeout: T }, async () => {
        const edge = await startEdge({
            config: edgeConfigFor(pebble, { domains: ['127.0.0.1'], acme: { challenges: ['tls-alpn-01', 'http-01'] }, upstream: up.url }),
        });
        try {
            await edge.waitForLog(/acme_certificate_installed/, 20000);
            assert.match(edge.stderr(), /acme_authorization_valid name=127\.0\.0\.1 type=tls-alpn-01/);
            const p = await peerCert(pebble.ports.tlsPort, {});
            assert.match(p.subjectaltname, /IP Address:127\.0\.0\.1/);
        } finally {
            await edge.stop();
        }
    });
});
