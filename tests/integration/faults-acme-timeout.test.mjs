// faults-acme-timeout — the ACME server stops answering at renewal time (a fault proxy in
// front of pebble holds every request). ott-edge's libcurl timeout is 60 s
// (pkg/acme/http.c CURLOPT_TIMEOUT_MS): the attempt fails with a timeout error and a retry
// delay, the certificate obtained before keeps being served meanwhile (requests are not
// held up by the stuck ACME thread), and SIGTERM during a hung ACME request still exits
// promptly with 0.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { startEdge, startUpstream, adminGet, slow, waitFor, curl, sleep } from '../lib/harness.mjs';
import { startPebble, edgeConfigFor, verifiedPeer } from '../lib/pebble.mjs';
import { startFaultProxy } from '../lib/faultproxy.mjs';

const CURL_TIMEOUT_MS = 60000; // pkg/acme/http.c
const T = (CURL_TIMEOUT_MS + 60000) * slow;
const NAME = 'b.ott-edge.test';

describe('ACME server that never answers at renewal', () => {
    let pebble, up, proxy;
    before(async () => {
        pebble = await startPebble({ slot: 9, validity: 180 });
        up = await startUpstream();
        proxy = await startFaultProxy({
            target: `https://127.0.0.1:${pebble.ports.acme}`,
            ca: readFileSync(pebble.caFile),
            cert: readFileSync(path.join(pebble.dir, 'localhost.pem')),
            key: readFileSync(path.join(pebble.dir, 'localhost.key')),
        });
    });
    after(async () => {
        await proxy?.close();
        await pebble?.stop();
        await up?.stop();
    });

    it('times out, backs off, keeps serving the current certificate; SIGTERM mid-request exits 0 at once', { timeout: T }, async () => {
        const cfg = edgeConfigFor(pebble, {
            upstream: up.url,
            acme: { directory: `${proxy.url}/dir`, challenges: ['http-01'], retry_base: '200ms', renew_before: '175s' },
        });
        const edge = await startEdge({ config: cfg });
        try {
            await edge.waitForLog(/acme_certificate_installed/, 20000);
            const root = await pebble.root();
            const first = await verifiedPeer(pebble.ports.tlsPort, NAME, root);

            proxy.setFault({ type: 'hang' });
            await edge.waitForLog(/acme_order_start domains=\d+ renewal=true/, 20000);
            await waitFor(() => proxy.heldCount > 0, 10000, 'a held ACME request');
            const t0 = Date.now();

            // While the ACME thread is stuck: serving goes on with the first certificate.
            for (let i = 0; i < 5; i++) {
                const r = await curl(['-k', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5',
                    '--resolve', `${NAME}:${pebble.ports.tlsPort}:127.0.0.1`, `https://${NAME}:${pebble.ports.tlsPort}/api/status`]);
                assert.equal(r.stdout, '200', `request ${i} while ACME hangs: ${r.stderr}`);
                assert.equal((await verifiedPeer(pebble.ports.tlsPort, NAME, root)).serialNumber, first.serialNumber);
                assert.equal((await adminGet(edge, '/livez')).status, 200);
                await sleep(2000);
            }
            assert.equal((await adminGet(edge, '/readyz')).status, 200);

            const failed = await edge.waitForLog(/acme_failed/, (CURL_TIMEOUT_MS + 15000) / slow);
            const took = Date.now() - t0;
            assert.match(failed, /time(d)? ?out/i, `not a timeout error: ${failed}`);
            assert.match(failed, /retry_in_s=0\.[2-9]/);
            assert.ok(took > CURL_TIMEOUT_MS - 12000 && took < CURL_TIMEOUT_MS + 15000 * slow, `failed after ${took} ms`);
            assert.equal((await verifiedPeer(pebble.ports.tlsPort, NAME, root)).serialNumber, first.serialNumber);
            console.log(`# faults-acme-timeout: acme_failed after ${took} ms of a held request: ${/error="([^"]*)"/.exec(failed)?.[1]}`);

            // The retry hangs too; SIGTERM now must not wait for libcurl's 60 s.
            await waitFor(() => proxy.heldCount > 0, 10000, 'the retry held');
            await sleep(500);
            const t1 = Date.now();
            edge.kill('SIGTERM');
            const ex = await edge.waitExit(15000);
            const stopMs = Date.now() - t1;
            assert.deepEqual(ex, { code: 0, signal: null }, edge.stderr());
            assert.ok(stopMs < 6000 * slow, `exit took ${stopMs} ms with an ACME request hanging`);
            console.log(`# faults-acme-timeout: SIGTERM with a hung ACME request: exit 0 after ${stopMs} ms`);
        } finally {
            await edge.stop();
        }
    });
});
