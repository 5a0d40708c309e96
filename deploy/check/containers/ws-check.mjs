// ws-check — a real WebSocket client (the `ws` package from tests/node_modules) through
// ott-edge: connects to wss://NAME:PORT/api/room/<room> at ADDRESS, verifying the served
// certificate against CA_FILE and NAME, expects the upstream's hello, sends a message and
// expects it echoed, then closes with 1000. Exit 0 on success, 1 with the reason.
//   node ws-check.mjs NAME ADDRESS PORT CA_FILE [ROOM]
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const WebSocket = createRequire(path.join(here, '../../../tests/package.json'))('ws');
const [name, address, port, caFile, room = 'ci'] = process.argv.slice(2);
const fail = (why) => {
    console.error(`ws-check: ${why}`);
    process.exit(1);
};
setTimeout(() => fail('no echo within 10 s'), 10000).unref();

const token = `ci-${process.pid}-${Date.now()}`;
const ws = new WebSocket(`wss://${name}:${port}/api/room/${room}`, {
    ca: readFileSync(caFile),
    servername: name,
    lookup: (host, opts, cb) => (opts && opts.all ? cb(null, [{ address, family: 4 }]) : cb(null, address, 4)),
});
let hello = false;
ws.on('error', (e) => fail(e.message));
ws.on('unexpected-response', (req, res) => fail(`upgrade answered ${res.statusCode}`));
ws.on('message', (data) => {
    const text = data.toString();
    if (!hello) {
        if (!/"type":"hello"/.test(text)) fail(`first message is not the upstream's hello: ${text}`);
        hello = true;
        ws.send(token);
        return;
    }
    if (text !== token) fail(`echo mismatch: ${text}`);
    ws.close(1000);
});
ws.on('close', (code) => {
    if (!hello || code !== 1000) fail(`closed with ${code} before the echo`);
    console.log(`ws-check: hello and echo over wss://${name}:${port} (close ${code})`);
    process.exit(0);
});
