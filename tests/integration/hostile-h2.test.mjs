// hostile-h2 — HTTP/2 attacks from tests/lib/h2attack.py (Debian's python3-h2/hpack, run by
// /usr/bin/python3, bounded in count and time, loopback only): rapid reset (CVE-2023-44487),
// SETTINGS and PING floods, an HPACK bomb, a CONTINUATION flood, streams that never read
// their response (flow control), many idle connections, CR/LF/NUL in header values.
//
// For each attack the test records, and prints as `# note:` lines: whether ott-edge closed the
// abusive connection (GOAWAY / EOF), the CPU time ott-edge used during the attack
// (/proc/<pid>/stat utime+stime), its memory (VmRSS), the upstream requests the attack
// caused (the upstream's /count), and a normal h2 client's latency meanwhile.
// It asserts what must hold now (no crash, memory bounded, normal clients served); the
// rapid-reset mitigation target is asserted (pkg/server/h2guard.c).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { slow, sleep, startUpstream, startEdge, curl, httpGet, runProcess, TESTS_DIR } from '../lib/harness.mjs';

const T = 120000 * slow;
const ATTACK = path.join(TESTS_DIR, 'lib/h2attack.py');
const PY = '/usr/bin/python3';
const HEALTH = '/api/status';
const NORMAL = '/normal-client';

const haveH2 = existsSync(PY) && (await runProcess(PY, ['-c', 'import hpack'], { timeoutMs: 10000 })).code === 0;
const skip = haveH2 ? false : 'needs /usr/bin/python3 with python3-h2 (tools/deps.sh test)';

function cpuSeconds(pid) {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in clock ticks (USER_HZ 100)
}
function rssKiB(pid) {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
}
const median = (a) => {
    const s = [...a].sort((x, y) => x - y);
    return s.length ? s[s.length >> 1] : NaN;
};
const note = (s) => process.stderr.write(`# note: ${s}\n`);

describe('HTTP/2 attacks', { skip }, () => {
    let up, edge, baseline;
    const counts = async () => JSON.parse((await httpGet(`${up.url}/count`)).body);
    /** Upstream requests not made by the health check or the normal client. */
    const attackRequests = (c) => Object.entries(c.paths).reduce((n, [p, k]) => (p === HEALTH || p === NORMAL ? n : n + k), 0);

    async function normalRequest() {
        const t = Date.now();
        const r = await curl(['-k', '--http2', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', String(20 * slow), `${edge.url}${NORMAL}`]);
        return { ms: Date.now() - t, ok: r.code === 0 && r.stdout === '200', code: r.code, status: r.stdout };
    }

    /**
     * Runs h2attack.py with args while a normal client requests every 100 ms and memory is
     * sampled every 100 ms. Returns the attack's JSON plus the figures.
     */
    async function measure(args, timeoutMs = 60000) {
        const c0 = await counts();
        const cpu0 = cpuSeconds(edge.pid);
        const rss0 = rssKiB(edge.pid);
        let rssPeak = rss0;
        let stop = false;
        const lat = [];
        const sampler = (async () => {
            while (!stop) {
                try {
                    rssPeak = Math.max(rssPeak, rssKiB(edge.pid));
                } catch {}
                await sleep(100);
            }
        })();
        const normal = (async () => {
            while (!stop) {
                lat.push(await normalRequest());
                await sleep(100);
            }
        })();
        const t0 = Date.now();
        // the attacker is another peer than the normal client (127.0.0.1): ott-edge blocks
        // repeat offenders by address. Rapid-reset attacks all come from 127.0.0.2 (the
        // reconnecting attacker must fare no better); every other attack from its own address.
        const source = args[0] === 'rapid-reset' ? '127.0.0.2' : `127.0.0.${10 + sourceCounter++}`;
        const p = await runProcess(PY, [ATTACK, ...args, '--source', source, '--port', String(edge.httpsPort)], { timeoutMs: timeoutMs * slow });
        const wall = Date.now() - t0;
        const cpu = cpuSeconds(edge.pid) - cpu0;
        stop = true;
        await Promise.all([sampler, normal]);
        await sleep(300); // requests the attack started may still be reaching the upstream
        const c1 = await counts();
        assert.equal(p.timedOut, false, `h2attack ${args[0]} did not finish in time: ${p.stderr}`);
        let r;
        try {
            r = JSON.parse(p.stdout.trim().split('\n').pop());
        } catch {
            assert.fail(`h2attack ${args[0]} printed no result (exit ${p.code}): ${p.stdout}\n${p.stderr}`);
        }
        const fig = {
            ...r,
            wall_ms: wall,
            edge_cpu_s: Number(cpu.toFixed(2)),
            rss_before_kib: rss0,
            rss_peak_kib: rssPeak,
            rss_after_kib: rssKiB(edge.pid),
            upstream_requests: attackRequests(c1) - attackRequests(c0),
            normal_requests: lat.length,
            normal_failed: lat.filter((x) => !x.ok).length,
            normal_median_ms: median(lat.map((x) => x.ms)),
            normal_max_ms: Math.max(...lat.map((x) => x.ms)),
            normal_baseline_ms: baseline,
        };
        const { results, ...short } = fig;
        note(`${args[0]}: ${JSON.stringify(short)}`);
        return fig;
    }

    let sourceCounter = 0;

    function assertHealthy(fig, { rssGrowthMiB = 64 } = {}) {
        assert.equal(edge.exitInfo, null, `ott-edge exited: ${JSON.stringify(edge.exitInfo)}\n${edge.stderr()}`);
        assert.ok(fig.normal_requests > 0, 'the normal client made no request during the attack');
        assert.equal(fig.normal_failed, 0, `normal client requests failed during the attack: ${JSON.stringify(fig)}`);
        const growth = (fig.rss_peak_kib - fig.rss_before_kib) / 1024;
        assert.ok(growth < rssGrowthMiB * slow, `ott-edge RSS grew ${growth.toFixed(1)} MiB during the attack (limit ${rssGrowthMiB})`);
    }

    before(async () => {
        up = await startUpstream();
        edge = await startEdge({ config: { upstream: up.url, client: { idle_timeout: '3s', request_timeout: '3s' } } });
        const lat = [];
        for (let i = 0; i < 10; i++) lat.push((await normalRequest()).ms);
        baseline = median(lat);
        note(`normal h2 client baseline: median ${baseline} ms`);
    });
    after(async () => {
        await edge?.stop();
        await up?.stop();
    });

    let rr;
    it('rapid reset (50,000 streams opened and cancelled on one connection): ott-edge survives and keeps serving', { timeout: T }, async () => {
        rr = await measure(['rapid-reset', '--count', '50000', '--batch', '100', '--seconds', '15', '--path', '/slow?ms=2000']);
        assertHealthy(rr);
    });

    it('rapid reset is cut off: GOAWAY/close after at most ~1000 cancelled streams, upstream barely touched, normal latency flat',
        { timeout: T }, async () => {
            assert.ok(rr, 'the rapid reset attack did not run');
            const processed = rr.goaway ? rr.goaway.last_stream_id / 2 : rr.streams_opened;
            assert.ok(rr.closed || rr.goaway, `connection still open after ${rr.streams_opened} cancelled streams`);
            assert.ok(processed <= 2000, `the server processed ${processed} streams before GOAWAY`);
            assert.ok(rr.upstream_requests < rr.streams_opened / 10, `${rr.upstream_requests} upstream requests from ${rr.streams_opened} streams`);
            assert.ok(rr.normal_median_ms <= 3 * baseline + 50, `normal median latency ${rr.normal_median_ms} ms (baseline ${baseline} ms)`);
        });

    it('rapid reset from an attacker who reconnects (5 x 5,000 streams) fares no better', { timeout: T }, async () => {
        const figs = [];
        for (let i = 0; i < 5; i++) figs.push(await measure(['rapid-reset', '--count', '5000', '--batch', '100', '--seconds', '8', '--path', '/slow?ms=2000']));
        for (const f of figs) assertHealthy(f);
        for (const f of figs) assert.ok(f.closed || f.goaway, `a reconnected attacker's connection stayed open (${f.streams_opened} streams)`);
    });

    it('SETTINGS flood (200,000 frames, ACKs unread): bounded memory, normal clients served', { timeout: T }, async () => {
        const f = await measure(['settings-flood', '--count', '200000', '--batch', '500', '--seconds', '15']);
        assertHealthy(f);
        assert.equal(f.upstream_requests, 0);
    });

    it('PING flood (200,000 frames, ACKs unread): bounded memory, normal clients served', { timeout: T }, async () => {
        const f = await measure(['ping-flood', '--count', '200000', '--batch', '500', '--seconds', '15']);
        assertHealthy(f);
        assert.equal(f.upstream_requests, 0);
    });

    it('HPACK bomb (4 KB header referenced 20,000 times = 80 MB decoded): ott-edge survives, nothing reaches upstream routing', { timeout: T }, async () => {
        const f = await measure(['hpack-bomb', '--count', '20000', '--size', '4000', '--seconds', '10', '--path', '/hpack-bomb']);
        note(`hpack-bomb: answered ${JSON.stringify(f.statuses)}, RSS +${((f.rss_peak_kib - f.rss_before_kib) / 1024).toFixed(1)} MiB for a ${f.block_bytes}-byte header block`);
        assertHealthy(f, { rssGrowthMiB: 512 });
        assert.equal(f.upstream_requests, 0, 'the bomb reached the upstream');
    });

    it('HPACK bomb is refused by ott-edge itself (431), never forwarded', { timeout: T }, async () => {
        const f = await measure(['hpack-bomb', '--count', '20000', '--size', '4000', '--seconds', '10', '--path', '/hpack-bomb']);
        // libh2o 2.2.5 decodes the whole list before any handler runs (the RSS spike is its),
        // ott-edge refuses it before it reaches the proxy
        assertHealthy(f, { rssGrowthMiB: 512 });
        assert.ok(f.closed || f.goaway || f.resets_received > 0 || [400, 431].includes(f.statuses[0]), `answered ${JSON.stringify(f.statuses)}`);
        assert.notEqual(f.statuses[0], 502, 'a 502 means ott-edge sent the 80 MB header block to the upstream');
    });

    it('CONTINUATION flood (100,000 frames, never END_HEADERS): connection closed, memory bounded', { timeout: T }, async () => {
        const f = await measure(['continuation', '--count', '100000', '--size', '100', '--batch', '200', '--seconds', '10', '--path', '/continuation']);
        assertHealthy(f);
        assert.ok(f.closed || f.goaway, 'a CONTINUATION flood must get the connection closed');
        assert.equal(f.upstream_requests, 0);
    });

    it('streams that never read their response (zero window, 100 x 4 MiB): memory bounded, normal clients served', { timeout: T }, async () => {
        const f = await measure(['no-read', '--count', '100', '--seconds', '8', '--path', '/big?kb=4096']);
        note(`no-read: ott-edge holds ${((f.rss_peak_kib - f.rss_before_kib) / 1024).toFixed(1)} MiB for one connection that never reads`);
        assertHealthy(f, { rssGrowthMiB: 512 });
    });

    // The budget: one OE_PROXY_BUF (32 KiB) per proxied response, 32 streams per connection
    // (libh2o's max_concurrent_requests_per_connection): 1 MiB per connection at most; the
    // upstream is paused by TCP backpressure, never read into memory. (25 connections here to
    // keep the suite quick; tests/bench/noread-memory.sh measures 100.)
    it('25 connections x 32 streams of 4 MiB that never read: RSS within 1 MiB per connection, normal clients served', { timeout: T }, async () => {
        const N = 25;
        const f = await measure(['no-read', '--connections', String(N), '--count', '32', '--seconds', String(40 * slow), '--hold', '3', '--path', '/big?kb=4096'], 120000);
        const growth = (f.rss_peak_kib - f.rss_before_kib) / 1024;
        note(`no-read x${N}: ott-edge RSS ${(f.rss_before_kib / 1024).toFixed(1)} -> peak ${(f.rss_peak_kib / 1024).toFixed(1)} MiB (+${growth.toFixed(1)} MiB) for ${f.connections} connections x ${f.sent} streams x 4 MiB (${(f.connections * f.sent * 4) / 1024} GiB asked), ${f.responses_total} response heads in ${f.all_started_in_s} s, ${f.data_received_total} DATA bytes sent`);
        assert.equal(f.connections, N);
        assert.equal(f.responses_total, N * 32, 'every stream was proxied (its response head arrived)');
        assert.equal(f.data_received_total, 0, 'no DATA may be sent into a zero window');
        assertHealthy(f, { rssGrowthMiB: N + 8 });
    });

    it('200 idle h2 connections are closed at client.idle_timeout (3s); normal clients served', { timeout: T }, async () => {
        const f = await measure(['idle', '--count', '200', '--seconds', String(12 * slow), '--hold', String(6 * slow)]);
        assertHealthy(f);
        // opened one by one from Python within the time budget: a loaded machine opens fewer
        // (97 of 200 seen in CI); what counts is that every one is closed at the idle timeout
        assert.ok(f.sent >= 50, `only ${f.sent} idle connections could be opened`);
        assert.equal(f.closed_by_server, f.sent, `${f.sent - f.closed_by_server} of ${f.sent} idle connections still open after ${f.elapsed_s} s`);
    });

    // h2spec 8.1.2.3/1 (the one case it found): libh2o turns an empty :path into "/"
    it('a HEADERS frame with an empty :path is reset with PROTOCOL_ERROR, never proxied', { timeout: T }, async () => {
        const f = await measure(['empty-path', '--seconds', '5', '--path', '/after-empty-path']);
        note(`empty-path: ${JSON.stringify({ statuses: f.statuses, reset_codes: f.reset_codes, goaway: f.goaway })}`);
        assert.ok(f.reset_codes.includes(1) || f.goaway?.error_code === 1, `no RST_STREAM/GOAWAY with PROTOCOL_ERROR (1): ${JSON.stringify(f)}`);
        assert.equal(f.upstream_requests, 1, 'only the well-formed request reached the upstream');
        assertHealthy(f);
    });

    it('CR, LF or NUL inside an h2 header value never reaches the upstream', { timeout: T }, async () => {
        const f = await measure(['bad-header', '--path', '/bad-header', '--seconds', '5', '--values', 'a\\rb', 'a\\nb', 'a\\x00b', 'a\\r\\nx-injected: 1']);
        assertHealthy(f);
        assert.equal(f.upstream_requests, 0, `a request with a control byte in a header value reached the upstream: ${JSON.stringify(f.results)}`);
    });
});
