// hostile-slowloris — 200 TLS connections that send their HTTP/1.1 request head one byte per
// second (bounded to ~20 s). With client.request_timeout 3s: ott-edge's memory (VmRSS) stays
// bounded, a normal client is served meanwhile with its usual latency, and every slow
// connection is cut at the timeout (not left open for the whole trickle).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { slow, sleep, startUpstream, startEdge, curl, httpGet } from '../lib/harness.mjs';

const CONNS = 200;
const ATTACK_MS = 20000;
const TIMEOUT_S = 3;
const note = (s) => process.stderr.write(`# note: ${s}\n`);
const rssKiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
function cpuSeconds(pid) {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
}

/** One slow client: connects, then writes the request head a byte per second until the server
 *  closes or the attack ends. Resolves to {connected, closedAfterMs (null if never), bytesSent, got}. */
function slowClient(port, endAt) {
    return new Promise((resolve) => {
        const head = 'GET /slowloris HTTP/1.1\r\nHost: ott.test\r\nX-Slow: ' + 'a'.repeat(200) + '\r\n\r\n';
        let i = 0;
        let t0 = null;
        let timer = null;
        let got = '';
        let done = false;
        const s = tls.connect({ host: '127.0.0.1', port, servername: 'ott.test', ALPNProtocols: ['http/1.1'], rejectUnauthorized: false });
        const finish = (closedByServer) => {
            if (done) return;
            done = true;
            clearTimeout(timer);
            s.destroy();
            resolve({ connected: t0 !== null, closedAfterMs: closedByServer && t0 !== null ? Date.now() - t0 : null, bytesSent: i, got });
        };
        const tick = () => {
            if (Date.now() >= endAt) return finish(false);
            if (i < head.length) s.write(head[i++]);
            timer = setTimeout(tick, 1000);
        };
        s.once('secureConnect', () => {
            t0 = Date.now();
            tick();
        });
        s.on('data', (d) => (got += d.toString('latin1')));
        s.on('close', () => finish(true));
        s.on('error', () => finish(true));
        setTimeout(() => finish(false), endAt - Date.now() + 2000).unref();
    });
}

describe('slowloris', () => {
    let up, edge;
    before(async () => {
        up = await startUpstream();
        edge = await startEdge({ config: { upstream: up.url, client: { request_timeout: `${TIMEOUT_S}s`, handshake_timeout: `${TIMEOUT_S}s` } } });
    });
    after(async () => {
        await edge?.stop();
        await up?.stop();
    });

    it(`${CONNS} connections trickling a byte per second: memory bounded, normal client served, slow ones cut at ${TIMEOUT_S}s`, { timeout: (ATTACK_MS + 30000) * slow }, async () => {
        const normal = async () => {
            const t = Date.now();
            const r = await curl(['-k', '--http1.1', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', `${edge.url}/normal`]);
            return { ms: Date.now() - t, ok: r.code === 0 && r.stdout === '200' };
        };
        const base = [];
        for (let i = 0; i < 5; i++) base.push((await normal()).ms);
        const rss0 = rssKiB(edge.pid);
        const cpu0 = cpuSeconds(edge.pid);
        const endAt = Date.now() + ATTACK_MS;
        const clients = [];
        for (let i = 0; i < CONNS; i++) {
            clients.push(slowClient(edge.httpsPort, endAt));
            if (i % 20 === 19) await sleep(50);
        }
        let rssPeak = rss0;
        const lat = [];
        while (Date.now() < endAt) {
            rssPeak = Math.max(rssPeak, rssKiB(edge.pid));
            lat.push(await normal());
            await sleep(250);
        }
        const res = await Promise.all(clients);
        const cpu = cpuSeconds(edge.pid) - cpu0;
        const connected = res.filter((r) => r.connected);
        const cut = connected.filter((r) => r.closedAfterMs !== null);
        const cutMs = cut.map((r) => r.closedAfterMs).sort((a, b) => a - b);
        const med = (a) => a[a.length >> 1];
        const count = JSON.parse((await httpGet(`${up.url}/count?path=/slowloris`)).body).count;
        const fig = {
            connected: connected.length, cut_by_server: cut.length, cut_after_ms_median: med(cutMs), cut_after_ms_max: cutMs[cutMs.length - 1],
            rss_before_kib: rss0, rss_peak_kib: rssPeak, edge_cpu_s: Number(cpu.toFixed(2)), upstream_requests: count,
            normal_requests: lat.length, normal_failed: lat.filter((x) => !x.ok).length,
            normal_median_ms: med(lat.map((x) => x.ms).sort((a, b) => a - b)), normal_baseline_ms: med(base.sort((a, b) => a - b)),
            responses_to_slow: [...new Set(cut.map((r) => (/^HTTP\/1\.1 (\d+)/.exec(r.got) || [])[1] || 'none'))],
        };
        note(`slowloris: ${JSON.stringify(fig)}`);

        assert.equal(edge.exitInfo, null, `ott-edge exited: ${edge.stderr()}`);
        assert.ok(connected.length >= CONNS * 0.9, `only ${connected.length} of ${CONNS} slow clients connected`);
        assert.equal(fig.normal_failed, 0, 'a normal client failed during the slowloris attack');
        assert.ok(fig.normal_median_ms < 1000 * slow, `normal median latency ${fig.normal_median_ms} ms during the attack`);
        assert.ok((rssPeak - rss0) / 1024 < 64 * slow, `RSS grew ${((rssPeak - rss0) / 1024).toFixed(1)} MiB`);
        assert.equal(count, 0, 'a partial request head reached the upstream');
        assert.equal(cut.length, connected.length, `${connected.length - cut.length} slow connections were never cut`);
        // cut near the timeout (the timer starts at the handshake; allow scheduling slack), never after the whole trickle
        assert.ok(fig.cut_after_ms_max < (TIMEOUT_S * 1000 + 4000) * slow, `a slow connection lived ${fig.cut_after_ms_max} ms (request_timeout ${TIMEOUT_S}s)`);
    });
});
