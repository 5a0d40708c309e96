// load — a counted request load against ott-edge for the reload and upgrade tests: it
// shows that no request fails while the configuration or the binary changes.
//
// Workers, each sending GETs back to back until stop():
//   - h1 keep-alive (one https.Agent connection reused);
//   - h1 new connection per request (a fresh TCP + TLS handshake every time: a refused or
//     reset connection at the moment of a hand-over shows up here);
//   - h2 (one session reused; a new one after GOAWAY).
// A request is retried only where HTTP allows a client to retry on its own (RFC 9110 §9.2.2
// for a GET; RFC 9113 §6.8 / §8.7): a reused HTTP/1.1 connection closed before any byte of
// the answer, an HTTP/2 stream the server refused or did not process (REFUSED_STREAM,
// beyond GOAWAY's last stream id). Those are counted apart as `retried`; anything else —
// a refused connection, a reset mid-answer, a non-200 answer — is `failed`, with the reason.
//
// startLoad({port, servername, path, h1, h1new, h2, pauseMs}) -> {stats(), stop() -> stats}
//   stats: {ok, failed, retried, errors: [first 20 reasons], byUpstream: {name: n}}
import https from 'node:https';
import http2 from 'node:http2';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function startLoad({ port, servername, path = '/api/status', h1 = 2, h1new = 1, h2 = 2, pauseMs = 5 }) {
    const st = { ok: 0, failed: 0, retried: 0, errors: [], byUpstream: {} };
    let running = true;
    const fail = (why) => {
        st.failed++;
        if (st.errors.length < 20) st.errors.push(why);
    };
    const okFrom = (headers) => {
        st.ok++;
        const u = headers['x-upstream-name'];
        if (u) st.byUpstream[u] = (st.byUpstream[u] || 0) + 1;
    };

    // One HTTP/1.1 GET; resolves 'ok' | 'retry' | a failure reason.
    const h1get = (agent) =>
        new Promise((resolve) => {
            let gotResponse = false;
            const req = https.request(
                { host: '127.0.0.1', port, path, servername, headers: { host: servername }, agent, rejectUnauthorized: false, timeout: 10000 },
                (res) => {
                    gotResponse = true;
                    res.resume();
                    res.on('end', () => (res.statusCode === 200 ? (okFrom(res.headers), resolve('ok')) : resolve(`h1 status ${res.statusCode}`)));
                    res.on('error', (e) => resolve(`h1 response error ${e.code || e.message}`));
                },
            );
            req.on('timeout', () => req.destroy(new Error('timeout')));
            req.on('error', (e) => {
                // a kept-alive connection the server closed before answering: the client may retry
                if (!gotResponse && req.reusedSocket && (e.code === 'ECONNRESET' || e.code === 'EPIPE' || /socket hang up/.test(e.message)))
                    resolve('retry');
                else resolve(`h1${agent ? '' : ' new-conn'} error ${e.code || e.message}`);
            });
            req.end();
        });

    const h1worker = async (keepAlive) => {
        const agent = keepAlive ? new https.Agent({ keepAlive: true, maxSockets: 1 }) : new https.Agent({ keepAlive: false });
        while (running) {
            const r = await h1get(agent);
            if (r === 'ok') {
            } else if (r === 'retry') st.retried++;
            else fail(r);
            await sleep(pauseMs);
        }
        agent.destroy();
    };

    // One HTTP/2 session's worth of requests; returns when the session is gone or stop().
    const h2worker = async () => {
        while (running) {
            let session;
            try {
                session = await new Promise((resolve, reject) => {
                    const s = http2.connect(`https://127.0.0.1:${port}`, { servername, rejectUnauthorized: false });
                    s.once('connect', () => resolve(s));
                    s.once('error', reject);
                });
            } catch (e) {
                fail(`h2 connect error ${e.code || e.message}`);
                await sleep(50);
                continue;
            }
            let goaway = false;
            session.on('goaway', () => (goaway = true));
            session.on('error', () => {});
            while (running && !goaway && !session.closed && !session.destroyed) {
                const r = await new Promise((resolve) => {
                    let stream;
                    try {
                        stream = session.request({ ':path': path, ':authority': servername });
                    } catch (e) {
                        return resolve(goaway || e.code === 'ERR_HTTP2_GOAWAY_SESSION' || e.code === 'ERR_HTTP2_INVALID_SESSION' ? 'retry' : `h2 request ${e.code}`);
                    }
                    let headers = null;
                    stream.on('response', (h) => (headers = h));
                    stream.resume();
                    stream.setTimeout(10000, () => stream.close(http2.constants.NGHTTP2_CANCEL));
                    stream.on('close', () => {
                        if (headers && headers[':status'] === 200 && stream.rstCode === 0) return okFrom(headers), resolve('ok');
                        if (!headers && (stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM || goaway)) return resolve('retry');
                        resolve(`h2 stream status=${headers?.[':status']} rst=${stream.rstCode}`);
                    });
                    stream.on('error', () => {});
                });
                if (r === 'ok') {
                } else if (r === 'retry') st.retried++;
                else fail(r);
                await sleep(pauseMs);
            }
            session.close();
        }
    };

    const workers = [];
    for (let i = 0; i < h1; i++) workers.push(h1worker(true));
    for (let i = 0; i < h1new; i++) workers.push(h1worker(false));
    for (let i = 0; i < h2; i++) workers.push(h2worker());
    return {
        stats: () => ({ ...st, errors: [...st.errors], byUpstream: { ...st.byUpstream } }),
        async stop() {
            running = false;
            await Promise.all(workers);
            return { ...st };
        },
    };
}

// 200 (n) WebSockets to the edge, each answering its echo: open(), check() (every one
// echoes a fresh message), closeAll().
export async function openWebSockets(openWs, url, n, { servername } = {}) {
    const socks = [];
    for (let i = 0; i < n; i += 20) {
        const batch = [];
        for (let k = i; k < Math.min(n, i + 20); k++) batch.push(openWs(`${url}/api/room/r${k}`, { servername, headers: servername ? { host: servername } : {}, timeoutMs: 10000 }));
        socks.push(...(await Promise.all(batch)));
    }
    for (const s of socks) await s.next(10000); // the hello
    return {
        socks,
        async check(tag) {
            await Promise.all(
                socks.map(async (s, i) => {
                    const msg = `${tag}-${i}`;
                    s.send(msg);
                    for (;;) {
                        const got = await s.next(10000);
                        if (got === msg) return;
                        if (!/"type":"(ping|hello)"/.test(got)) throw new Error(`websocket ${i}: expected ${msg}, got ${got.slice(0, 80)}`);
                    }
                }),
            );
            const closed = socks.filter((s) => s.closeInfo);
            if (closed.length) throw new Error(`${closed.length} websockets closed (${JSON.stringify(closed[0].closeInfo)})`);
        },
        closeAll() {
            for (const s of socks) s.close();
        },
    };
}
