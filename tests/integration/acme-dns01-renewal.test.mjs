// acme-dns01-renewal — a short-lived wildcard certificate (pebble certificateValidityPeriod
// 30 s) issued and renewed through DNS-01 (rfc2136 to a real knotd, pebble validating
// through unbound) while an HTTP/2 connection and a WebSocket opened under a name the
// wildcard covers stay open: the new serial is served to new handshakes, the open
// connections keep working, and no TXT record is left.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEdge, startUpstream, slow, h2Connect, h2Request, openWs, waitFor } from '../lib/harness.mjs';
import { startPebble, edgeConfigFor, verifiedPeer } from '../lib/pebble.mjs';
import { startDns } from '../lib/dns.mjs';

const T = 120000 * slow;
const NAME = 'room.ott.test'; // covered by *.ott.test only

describe('ACME DNS-01 renewal of a short-lived wildcard certificate', () => {
    let dns, pebble, up;
    before(async () => {
        dns = await startDns({ zones: ['ott.test'] });
        pebble = await startPebble({ slot: 13, validity: 30, dnsServer: dns.recursor });
        up = await startUpstream();
    });
    after(async () => {
        await pebble?.stop();
        await dns?.stop();
        await up?.stop();
    });

    it('renews before expiry; open HTTP/2 and WebSocket connections survive; a new serial is served', { timeout: T }, async () => {
        const edge = await startEdge({
            config: edgeConfigFor(pebble, {
                domains: ['ott.test', '*.ott.test'],
                upstream: up.url,
                acme: {
                    challenges: ['dns-01'],
                    dns: {
                        provider: 'rfc2136',
                        rfc2136: { server: dns.server, key_name: dns.key.name, key_secret: dns.key.secret },
                        resolvers: [dns.server],
                    },
                },
            }),
        });
        let session, ws;
        try {
            await edge.waitForLog(/acme_certificate_installed/, 30000 * slow);
            const root = await pebble.root();
            const first = await verifiedPeer(pebble.ports.tlsPort, NAME, root);
            assert.match(first.subjectaltname, /DNS:\*\.ott\.test/);

            session = await h2Connect(pebble.ports.tlsPort, { servername: NAME, ca: root });
            assert.equal((await h2Request(session, '/api/status')).status, 200);
            ws = await openWs(`wss://127.0.0.1:${pebble.ports.tlsPort}/api/room/dns01`, { ca: root, servername: NAME });
            assert.deepEqual(await ws.nextJson(), { type: 'hello', room: 'dns01' });

            // the renewal, through DNS-01 again, while they are open
            await edge.waitForLog(/acme_order_start domains=2 renewal=true/, 40000 * slow);
            await waitFor(() => edge.logs.filter((l) => /acme_certificate_installed/.test(l)).length >= 2, 20000 * slow,
                `a second certificate:\n${edge.stderr()}`);
            // pebble 2.4 reuses a valid authorization 1 time in 100 even with PEBBLE_AUTHZREUSE=0
            // (its test is rand.Intn(100) > percent): such a one is logged as reused, not validated
            const renewal = edge.logs.slice(edge.logs.findIndex((l) => /acme_order_start domains=2 renewal=true/.test(l)));
            const validated = renewal.filter((l) => /acme_authorization_valid name=ott\.test type=dns-01/.test(l)).length;
            const reused = renewal.filter((l) => /acme_authorization_reused name=ott\.test/.test(l)).length;
            assert.ok(validated >= 1 && validated + reused >= 2, `the renewal was validated by DNS-01 too:\n${edge.stderr()}`);
            assert.doesNotMatch(renewal.join('\n'), /acme_authorization_valid .*type=(http-01|tls-alpn-01)/);
            const second = await verifiedPeer(pebble.ports.tlsPort, 'other.ott.test', root);
            assert.notEqual(second.serialNumber, first.serialNumber, 'the same serial is still served after renewal');

            assert.equal(session.closed || session.destroyed, false, 'HTTP/2 session was closed by the renewal');
            assert.equal((await h2Request(session, '/api/status')).status, 200);
            ws.send('{"type":"chat","text":"after renewal"}');
            assert.equal(await ws.next(), '{"type":"chat","text":"after renewal"}');
            assert.equal(ws.closeInfo, null);

            assert.deepEqual(await dns.txt('_acme-challenge.ott.test'), []);
            assert.doesNotMatch(edge.stderr(), /acme_failed|acme_dns_cleanup_failed/);
        } finally {
            ws?.close();
            session?.close();
            await edge.stop();
        }
    });
});
