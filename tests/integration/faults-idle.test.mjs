// faults-idle — 10,000 concurrent idle connections. Node cannot raise its own fd limit, so
// a small /usr/bin/python3 script (below) raises RLIMIT_NOFILE to the hard limit, opens
// 10,000 connections to ott-edge's HTTPS port from eight 127.0.0.x source addresses,
// completes the TLS handshake on each with ALPN h2, sends the HTTP/2 preface and SETTINGS,
// and then holds them without a request (idle HTTP/2 connections, as browsers keep them;
// an idle HTTP/1.1 connection is closed after client.request_timeout, 10 s, by design). ott-edge raises its own limit to the hard limit at start. Meanwhile: its RSS
// stays bounded (KiB per connection reported), a normal client is served with normal
// latency, nothing is cut, and once they are closed the connection count goes back down.
// Skipped (with the reason) when the hard fd limit is below what 10,000 connections need.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { startEdge, startUpstream, adminGet, slow, waitFor, curl, openWs, sleep } from '../lib/harness.mjs';

const N = 10000;
const T = 120000 * slow;
const SANITIZE = process.env.OTT_EDGE_SANITIZE === '1';

const IDLE_PY = String.raw`
import resource, socket, ssl, sys, time, json, selectors, select
port, n, nsrc, limit_s = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if hard < n + 64:
    print(json.dumps({'skip': 'hard RLIMIT_NOFILE is %d, need %d' % (hard, n + 64)}), flush=True)
    sys.exit(0)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
srcs = ['127.0.0.%d' % (10 + i) for i in range(nsrc)]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(['h2'])
PREFACE = b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])  # + empty SETTINGS
sel = selectors.DefaultSelector()
held, failed, errs, started = [], 0, {}, 0
t0 = time.time()
deadline = t0 + limit_s
def err(k):
    global failed
    failed += 1
    errs[k] = errs.get(k, 0) + 1
while (started < n or sel.get_map()) and time.time() < deadline:
    while started < n and len(sel.get_map()) < 256:   # 256 handshakes in flight at most
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((srcs[started % nsrc], 0))
            s.setblocking(False)
            s.connect_ex(('127.0.0.1', port))
            t = ctx.wrap_socket(s, do_handshake_on_connect=False)
            sel.register(t, selectors.EVENT_WRITE, t)
        except OSError as e:
            err('connect:%s' % e.errno)
        started += 1
    for key, ev in sel.select(timeout=1):
        s = key.data
        try:
            s.do_handshake()
            sel.unregister(s)
            if s.selected_alpn_protocol() != 'h2':
                s.close()
                err('alpn:%s' % s.selected_alpn_protocol())
                continue
            s.sendall(PREFACE)   # 33 bytes: fits the socket buffer at once
            held.append(s)
        except ssl.SSLWantReadError:
            sel.modify(s, selectors.EVENT_READ, s)
        except ssl.SSLWantWriteError:
            sel.modify(s, selectors.EVENT_WRITE, s)
        except (OSError, ssl.SSLError) as e:
            sel.unregister(s)
            s.close()
            err('%s:%s' % (type(e).__name__, getattr(e, 'reason', None) or getattr(e, 'errno', '')))
for key in list(sel.get_map().values()):
    key.fileobj.close()
    err('unfinished')
print(json.dumps({'opened': len(held), 'failed': failed, 'errors': errs, 'secs': round(time.time() - t0, 2), 'nofile': hard}), flush=True)
select.select([sys.stdin], [], [], 120)   # hold until the test writes a line (or 120 s)
alive, goaway = 0, 0
for s in held:   # alive: no EOF and no GOAWAY (frame type 7) among what the server sent
    s.setblocking(False)
    data = b''
    try:
        while True:
            d = s.recv(65536)
            if d == b'':
                break
            data += d
    except (BlockingIOError, ssl.SSLWantReadError):
        i, frames = 0, []
        while i + 9 <= len(data):
            frames.append(data[i + 3])
            i += 9 + int.from_bytes(data[i:i + 3], 'big')
        if 7 in frames:
            goaway += 1
        else:
            alive += 1
    except Exception:
        pass
print(json.dumps({'alive': alive, 'goaway': goaway}), flush=True)
for s in held:
    s.close()
`;

function rssKiB(pid) {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
}
function nofile(pid) {
    const m = /Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
    return m[1] === 'unlimited' ? Infinity : Number(m[1]);
}
function metric(text, name) {
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) : NaN;
}

describe('10,000 concurrent idle connections', () => {
    let up, edge;
    before(async () => {
        up = await startUpstream();
        edge = await startEdge({ config: { upstream: up.url } });
    });
    after(async () => {
        await edge?.stop();
        await up?.stop();
    });

    it('memory stays bounded, a normal client is still served, nothing is cut', { timeout: T }, async (t) => {
        const have = nofile(edge.pid);
        if (have < N + 100) return t.skip(`skipped: ott-edge's fd limit is ${have} (hard limit here), ${N + 100} needed; raise ulimit -Hn`);
        // warm up (worker threads, TLS contexts, upstream pool) before the baseline
        for (let i = 0; i < 20; i++) await curl(['-k', '-o', '/dev/null', `${edge.url}/api/status`]);
        const rss0 = rssKiB(edge.pid);

        const tStart = Date.now();
        const py = spawn('/usr/bin/python3', ['-c', IDLE_PY, String(edge.httpsPort), String(N), '8', String(60 * slow)], { stdio: ['pipe', 'pipe', 'inherit'] });
        const lines = [];
        let buf = '';
        py.stdout.setEncoding('utf8').on('data', (d) => {
            buf += d;
            let i;
            while ((i = buf.indexOf('\n')) >= 0) {
                lines.push(JSON.parse(buf.slice(0, i)));
                buf = buf.slice(i + 1);
            }
        });
        const pyExit = new Promise((r) => py.on('exit', r));
        try {
            const first = await waitFor(() => lines[0], 90000, 'the idle-connection script to open its connections');
            if (first.skip) return t.skip(`skipped: ${first.skip}`);
            assert.equal(first.opened, N, `opened ${first.opened} of ${N}: ${JSON.stringify(first)}`);
            const m1 = (await adminGet(edge, '/metrics')).body;
            const open = metric(m1, 'ott_edge_connections_open');
            assert.ok(open >= N, `ott_edge_connections_open ${open}`);
            const rss1 = rssKiB(edge.pid);

            // A normal client meanwhile: h2, HTTP/1.1, a WebSocket, each served quickly.
            const lat = [];
            for (const proto of ['--http2', '--http1.1', '--http2', '--http1.1']) {
                const r = await curl(['-k', proto, '-o', '/dev/null', '-w', '%{http_code} %{time_total}', `${edge.url}/api/status`]);
                const [code, secs] = r.stdout.split(' ');
                assert.equal(code, '200', `${proto} with ${N} idle connections: ${r.stderr}`);
                lat.push(Number(secs) * 1000);
            }
            assert.ok(Math.max(...lat) < 3000 * slow, `slow answers with ${N} idle connections: ${lat.join(', ')} ms`);
            const ws = await openWs(`wss://127.0.0.1:${edge.httpsPort}/api/room/idle`);
            assert.deepEqual(await ws.nextJson(), { type: 'hello', room: 'idle' });
            ws.send('still here');
            assert.equal(await ws.next(), 'still here');
            ws.close();
            assert.equal((await adminGet(edge, '/livez')).status, 200);

            // Hold them past the 10 s handshake and HTTP/1 request timeouts: idle HTTP/2
            // connections are not cut before client.idle_timeout (120 s).
            const holdMs = 12000 - (Date.now() - tStart);
            if (holdMs > 0) await sleep(holdMs);
            const rss2 = rssKiB(edge.pid);
            const perConn = (Math.max(rss1, rss2) - rss0) / N;
            console.log(`# faults-idle: ${N} idle HTTP/2 connections opened in ${first.secs} s, held ${((Date.now() - tStart) / 1000).toFixed(1)} s; ott-edge RSS ${rss0} -> ${rss1} -> ${rss2} KiB = ${perConn.toFixed(1)} KiB per connection; ` +
                `normal client latency ${lat.map((x) => x.toFixed(1)).join('/')} ms; fd limit ${have}`);
            // Bounded: measured ~16 KiB here (TLS state + libh2o socket); ASan adds redzones and quarantine.
            assert.ok(perConn < (SANITIZE ? 256 : 48), `${perConn.toFixed(1)} KiB per idle connection`);

            py.stdin.write('close\n');
            const second = await waitFor(() => lines[1], 30000, 'the script to count its live connections');
            assert.equal(second.alive, N, `${N - second.alive} idle connections were cut while held (${second.goaway} with GOAWAY)`);
            await pyExit;
            await waitFor(async () => metric((await adminGet(edge, '/metrics')).body, 'ott_edge_connections_open') < 10, 15000, 'connections closed on the server side');
            assert.equal(edge.exitInfo, null);
        } finally {
            py.kill('SIGKILL');
        }
    });
});
