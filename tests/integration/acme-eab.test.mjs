// acme-eab — External Account Binding (RFC 8555 §7.3.4) against an EAB-requiring pebble:
// the right key gets an account and a certificate; a wrong key or no EAB fails clearly,
// keeps the self-signed certificate and /readyz at 503.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEdge, startUpstream, adminGet, slow, peerCert } from '../lib/harness.mjs';
import { startPebble, edgeConfigFor, verifiedPeer } from '../lib/pebble.mjs';

const T = 60000 * slow;
const KID = 'kid-1';
const KEY = 'zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W';
const WRONG = 'b10lLJs8l1GPIzsLP0s6pMt8O0XVGnfTaCeROxQM8DZsRQH0MWNPK46nw9GBRuxK';

describe('ACME External Account Binding', () => {
    let pebble, up;
    before(async () => {
        pebble = await startPebble({ slot: 3, eab: { [KID]: KEY } });
        up = await startUpstream();
    });
    after(async () => {
        await pebble?.stop();
        await up?.stop();
    });

    it('registers with the right EAB key and gets a certificate', { timeout: T }, async () => {
        const edge = await startEdge({
            config: edgeConfigFor(pebble, { acme: { challenges: ['http-01'], eab: { kid: KID, hmac_key: KEY } }, upstream: up.url }),
        });
        try {
            await edge.waitForLog(/acme_certificate_installed/, 20000);
            assert.match(edge.stderr(), /acme_account url=\S+ created=true eab=true/);
            const peer = await verifiedPeer(pebble.ports.tlsPort, 'a.ott-edge.test', await pebble.root());
            assert.match(peer.issuer.CN, /Pebble Intermediate/);
        } finally {
            await edge.stop();
        }
    });

    it('fails clearly with a wrong EAB key: problem logged, self-signed kept, not ready', { timeout: T }, async () => {
        const edge = await startEdge({
            config: edgeConfigFor(pebble, { acme: { challenges: ['http-01'], retry_base: '60s', eab: { kid: KID, hmac_key: WRONG } }, upstream: up.url }),
        });
        try {
            const line = await edge.waitForLog(/acme_failed/, 20000);
            assert.match(line, /newAccount \(with external account binding\) failed/);
            assert.match(edge.stderr(), /warn|error/);
            assert.match(edge.stderr(), /acme_problem step="?newAccount \(with external account binding\)"? status=\d+ type=urn:ietf:params:acme:error:\w+/);
            assert.doesNotMatch(edge.stderr(), /acme_certificate_installed/);
            const p = await peerCert(pebble.ports.tlsPort, { servername: 'a.ott-edge.test' });
            assert.match(JSON.stringify(p.subject), /self-signed/);
            assert.equal((await adminGet(edge, '/readyz')).status, 503);
            assert.match(line, /retry_in_s=\d+/);
        } finally {
            await edge.stop();
        }
    });

    it('says that EAB is required when none is configured', { timeout: T }, async () => {
        const edge = await startEdge({ config: edgeConfigFor(pebble, { acme: { challenges: ['http-01'] }, upstream: up.url }) });
        try {
            const line = await edge.waitForLog(/acme_failed/, 20000);
            assert.match(line, /requires External Account Binding: set acme\.eab\.kid and acme\.eab\.hmac_key/);
        } finally {
            await edge.stop();
        }
    });
});
