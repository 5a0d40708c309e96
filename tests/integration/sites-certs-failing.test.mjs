// sites-certs-failing — one site's validation is broken on purpose while the other's works:
// the broken site's name resolves (pebble-challtestsrv's mock DNS) to 127.0.0.2, where a TCP
// server accepts the validation connection and never answers, so its orders hang and then
// fail over and over. The good site still gets its certificate at once and renews its
// short-lived certificate (pebble certificateValidityPeriod 30 s) on time; the broken site keeps
// serving its self-signed fallback, /readyz says it is waiting for that site, and the metrics
// show each site's state. Once the broken name resolves again, the broken site gets its
// certificate on its next retry.
//
// Ports: pebble slot 21 (ACME 14210, ott-edge on 5642/5643; the broken name at 127.0.0.2:5642).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startEdge, startUpstream, adminGet, slow, tmpDir, waitFor, peerCert } from '../lib/harness.mjs';
import { startPebble, verifiedPeer } from '../lib/pebble.mjs';

const T = 90000 * slow;
const GOOD = 'good.sites.test';
const BROKEN = 'broken.sites.test';

const installedAt = (edge, site) => edge.logs.filter((l) => /acme_certificate_installed /.test(l) && l.includes(` site=${site}`));

describe('one site\'s failing validation never holds up another site', () => {
    let pebble, up, tarpit;
    const held = new Set();
    before(async () => {
        pebble = await startPebble({ slot: 21, validity: 30 });
        up = await startUpstream();
        // where the broken name points: accepts, reads, never answers
        tarpit = net.createServer((s) => {
            held.add(s);
            s.on('error', () => {});
            s.on('close', () => held.delete(s));
        });
        await new Promise((r, j) => tarpit.listen(pebble.ports.httpPort, '127.0.0.2', r).on('error', j));
        await pebble.addA(BROKEN, ['127.0.0.2']);
    });
    after(async () => {
        for (const s of held) s.destroy();
        tarpit?.close();
        await pebble?.stop();
        await up?.stop();
    });

    it('the good site is issued and renewed on time while the broken site\'s orders hang and fail', { timeout: T }, async () => {
        const t0 = Date.now();
        const edge = await startEdge({
            config: {
                listen: pebble.edgeListen(),
                acme: pebble.edgeAcmeConfig({ challenges: ['http-01'], retry_base: '1s' }),
                state_dir: `${tmpDir('ott-edge-sites-fail-')}/state`,
                sites: [
                    // the broken site first: a serial schedule would wait on it
                    { name: 'broken', domains: [BROKEN], upstream: up.url },
                    { name: 'good', domains: [GOOD], upstream: up.url },
                ],
            },
        });
        try {
            const root = await pebble.root();
            await waitFor(() => installedAt(edge, 'good').length >= 1, 15000, 'the good site\'s certificate');
            const first = await verifiedPeer(pebble.ports.tlsPort, GOOD, root);
            const issuedIn = Date.now() - t0;
            await waitFor(() => held.size > 0, 5000, 'pebble connected to the broken name\'s address');
            assert.equal(installedAt(edge, 'broken').length, 0);

            // the broken site: self-signed meanwhile, /readyz names it
            assert.match(JSON.stringify((await peerCert(pebble.ports.tlsPort, { servername: BROKEN })).subject), /self-signed/);
            const ready = await adminGet(edge, '/readyz');
            assert.equal(ready.status, 503);
            assert.match(ready.body, /site broken/);

            // the good site renews when a third of its 30 s is left, whatever the broken one does
            const next = await edge.waitForLog(/acme_next_attempt .*site=good/, 5000);
            assert.ok(Number(/in_s=(\d+)/.exec(next)[1]) <= 21, next);
            await waitFor(() => installedAt(edge, 'good').length >= 2, 40000, 'the good site\'s renewal');
            const second = await verifiedPeer(pebble.ports.tlsPort, GOOD, root);
            assert.notEqual(second.serialNumber, first.serialNumber, 'renewed: a new serial');
            const fails = edge.logs.filter((l) => /acme_failed .*site=broken/.test(l));
            assert.ok(fails.length >= 1, `the broken site failed meanwhile:\n${edge.stderr()}`);
            assert.doesNotMatch(edge.stderr(), /acme_failed .*site=good/);
            const m = (await adminGet(edge, '/metrics')).body;
            assert.match(m, /ott_edge_acme_site_renewals_total\{site="good",result="ok"\} [2-9]\n/);
            assert.match(m, /ott_edge_acme_site_renewals_total\{site="good",result="failed"\} 0\n/);
            assert.match(m, /ott_edge_acme_site_consecutive_failures\{site="good"\} 0\n/);
            assert.match(m, /ott_edge_acme_site_consecutive_failures\{site="broken"\} [1-9]\n/);
            assert.match(m, /ott_edge_site_certificate_self_signed\{site="broken"\} 1\n/);
            assert.match(m, /ott_edge_site_certificate_self_signed\{site="good"\} 0\n/);
            assert.ok(issuedIn < 15000 * slow, `the good site's first certificate took ${issuedIn} ms`);

            // repaired: the broken name resolves to ott-edge again; the next retry succeeds
            await pebble.clearA(BROKEN);
            for (const s of held) s.destroy(); // a validation still hanging there fails at once
            await waitFor(() => installedAt(edge, 'broken').length >= 1, 30000, 'the broken site\'s certificate after the repair');
            const fixed = await verifiedPeer(pebble.ports.tlsPort, BROKEN, root);
            assert.match(fixed.subjectaltname, /DNS:broken\.sites\.test/);
            await waitFor(async () => (await adminGet(edge, '/readyz')).status === 200, 10000, '/readyz 200');
        } finally {
            await edge.stop();
        }
    });
});
