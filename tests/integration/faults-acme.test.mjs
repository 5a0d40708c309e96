// faults-acme — the ACME server misbehaves at renewal time: it answers 500s, then garbage
// JSON (on the directory, then on every POST). A fault-injecting HTTPS proxy
// (lib/faultproxy.mjs) sits in front of a real pebble; ott-edge's acme.directory points at
// the proxy. Nothing crashes, the retry delay grows with every failure (acme_failed
// retry_in_s=...), the certificate obtained before keeps being served (verified against
// pebble's root), and once the CA behaves again the renewal goes through.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { startEdge, startUpstream, adminGet, slow, waitFor, curl } from '../lib/harness.mjs';
import { startPebble, edgeConfigFor, verifiedPeer } from '../lib/pebble.mjs';
import { startFaultProxy, isDirectory, isPost } from '../lib/faultproxy.mjs';

const T = 120000 * slow;
const NAME = 'a.ott-edge.test';

describe('ACME server returning 500s and garbage JSON at renewal', () => {
    let pebble, up, proxy;
    before(async () => {
        // 60 s certificates, renewed 5 s after issuance (acme.renew_before 55s): the whole
        // fault sequence runs while the first certificate is still valid.
        pebble = await startPebble({ slot: 8, validity: 60 });
        up = await startUpstream();
        proxy = await startFaultProxy({
            target: `https://127.0.0.1:${pebble.ports.acme}`,
            ca: readFileSync(pebble.caFile),
            cert: readFileSync(path.join(pebble.dir, 'localhost.pem')), // signed by pebble.caFile (acme.ca_file)
            key: readFileSync(path.join(pebble.dir, 'localhost.key')),
        });
    });
    after(async () => {
        await proxy?.close();
        await pebble?.stop();
        await up?.stop();
    });

    it('backoff grows, nothing crashes, the current certificate stays served, then renewal recovers', { timeout: T }, async () => {
        const cfg = edgeConfigFor(pebble, {
            upstream: up.url,
            acme: { directory: `${proxy.url}/dir`, challenges: ['http-01'], retry_base: '200ms', renew_before: '55s' },
        });
        const edge = await startEdge({ config: cfg });
        const failures = () => edge.logs.filter((l) => /acme_failed/.test(l));
        const delays = () => failures().map((l) => Number(/retry_in_s=([\d.]+)/.exec(l)?.[1]));
        const waitFailures = (n, what) => waitFor(() => failures().length >= n, 30000, `${n} acme_failed lines (${what})`);
        try {
            // A good certificate first, through the proxy in pass-through mode.
            await edge.waitForLog(/acme_certificate_installed/, 20000);
            assert.ok(proxy.requests.length > 5, 'ott-edge did not talk to the CA through the proxy');
            const root = await pebble.root();
            const first = await verifiedPeer(pebble.ports.tlsPort, NAME, root);

            // The CA turns bad before the renewal is due.
            proxy.setFault({ type: 'status', status: 500 });
            await edge.waitForLog(/acme_order_start domains=\d+ renewal=true/, 20000);
            await waitFailures(2, '500s');
            assert.match(failures()[0], /500/, `the 500 is not in the error: ${failures()[0]}`);

            proxy.setFault({ type: 'garbage' }, isDirectory);
            await waitFailures(3, 'garbage directory');
            proxy.setFault({ type: 'garbage' }, isPost);
            await waitFailures(6, 'garbage on POSTs');

            // Meanwhile: the first certificate is still served, verified, and requests work.
            const during = await verifiedPeer(pebble.ports.tlsPort, NAME, root);
            assert.equal(during.serialNumber, first.serialNumber, 'the served certificate changed during the faults');
            const r = await curl(['-k', '-o', '/dev/null', '-w', '%{http_code}', '--resolve', `${NAME}:${pebble.ports.tlsPort}:127.0.0.1`,
                `https://${NAME}:${pebble.ports.tlsPort}/api/status`]);
            assert.equal(r.stdout, '200');
            assert.equal((await adminGet(edge, '/readyz')).status, 200, 'a valid certificate is served: /readyz stays 200');
            assert.equal(edge.exitInfo, null, `ott-edge exited: ${edge.stderr()}`);

            const d = delays();
            for (let i = 1; i < 6; i++) assert.ok(d[i] > d[i - 1], `retry delays do not grow: ${d.join(', ')}`);
            assert.ok(d[0] >= 0.2 && d[0] < 0.5, `first retry ${d[0]} s, expected 0.2..0.3 s (retry_base 200ms)`);
            for (const l of failures()) assert.match(l, /error="[^"]{8,}"/, `acme_failed without a useful error: ${l}`);
            const m = (await adminGet(edge, '/metrics')).body;
            assert.match(m, /ott_edge_acme_consecutive_failures [6-9]/);
            assert.ok(proxy.faulted() >= 6, `only ${proxy.faulted()} requests were faulted`);

            // The CA recovers: the next attempt renews.
            proxy.setFault(null);
            await waitFor(() => edge.logs.filter((l) => /acme_certificate_installed/.test(l)).length >= 2, 30000, 'renewal after recovery');
            const renewed = await verifiedPeer(pebble.ports.tlsPort, NAME, root);
            assert.notEqual(renewed.serialNumber, first.serialNumber);
            assert.match((await adminGet(edge, '/metrics')).body, /ott_edge_acme_consecutive_failures 0/);
            const ex = await edge.stop();
            assert.deepEqual(ex, { code: 0, signal: null }, edge.stderr());
            console.log(`# faults-acme: retry delays (s): ${d.join(', ')}; requests faulted: ${proxy.faulted()}`);
            console.log(`# faults-acme: errors: ${failures().map((l) => /error="([^"]*)"/.exec(l)?.[1].slice(0, 120)).join(' | ')}`);
        } finally {
            await edge.stop();
        }
    });
});
