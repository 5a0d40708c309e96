// cluster-coldstart — benchmark (not a test) for cluster mode (issue 12):
//   1. time from starting three replicas on an empty Redis (and empty state_dirs) to all three
//      serving the same certificate that verifies against pebble's root, behind HAProxy with
//      real HTTP-01 validation;
//   2. the Redis traffic of each replica while idle (INFO commandstats after CONFIG RESETSTAT).
//
//   OTT_EDGE_BIN=$PWD/build/ott-edge node tests/bench/cluster-coldstart.mjs [RUNS] [IDLE_SECONDS] [CHALLENGE]
//   defaults: 5 runs, 60 s idle, http-01. Uses pebble slot 31 and Redis on 16472.
// Prints each run's milliseconds, min/median/max, then the idle commands per replica per minute
// (by command) and bytes per replica per minute.
import { startPebble } from '../lib/pebble.mjs';
import { startRedis, startReplicas, redisPort } from '../lib/cluster.mjs';
import { startUpstream, sleep } from '../lib/harness.mjs';

const runs = Number(process.argv[2] || 5);
const idle = Number(process.argv[3] || 60);
const challenge = process.argv[4] || 'http-01';

const pebble = await startPebble({ slot: 31 });
const redis = await startRedis({ port: redisPort(31) });
const up = await startUpstream();
const times = [];
let replicas = null;
try {
    for (let i = 0; i < runs; i++) {
        redis.cli('FLUSHALL');
        const t0 = Date.now();
        replicas = await startReplicas({ pebble, redis, challenges: [challenge], upstream: up.url, cluster: { lock_ttl: '60s' } });
        await replicas.waitSameSerial(60000);
        const ms = Date.now() - t0;
        times.push(ms);
        console.log(`run ${i + 1}: ${ms} ms (orders at pebble so far: ${pebble.orderCount()})`);
        if (i < runs - 1) {
            await replicas.stop();
            replicas = null;
        }
    }
    const s = [...times].sort((a, b) => a - b);
    console.log(`cold start, three replicas to the same verified certificate (${challenge}): min ${s[0]} ms, median ${s[Math.floor(s.length / 2)]} ms, max ${s[s.length - 1]} ms over ${runs} runs; ${pebble.orderCount()} orders for ${runs} runs`);

    // idle traffic: the replicas of the last run, settled
    await sleep(6000);
    redis.cli('CONFIG', 'RESETSTAT');
    const in0 = Number(/total_net_input_bytes:(\d+)/.exec(redis.cli('INFO', 'stats'))[1]);
    const out0 = Number(/total_net_output_bytes:(\d+)/.exec(redis.cli('INFO', 'stats'))[1]);
    await sleep(idle * 1000);
    const stats = redis.cli('INFO', 'commandstats');
    const st = redis.cli('INFO', 'stats');
    const inB = Number(/total_net_input_bytes:(\d+)/.exec(st)[1]) - in0;
    const outB = Number(/total_net_output_bytes:(\d+)/.exec(st)[1]) - out0;
    const per = (n) => ((n / 3) * 60) / idle;
    let total = 0;
    const rows = [];
    for (const m of stats.matchAll(/cmdstat_([a-z|]+):calls=(\d+)/g)) {
        if (m[1] === 'info' || m[1] === 'config|resetstat' || m[1] === 'config|get') continue; // the bench's own
        total += Number(m[2]);
        rows.push(`${m[1]} ${per(Number(m[2])).toFixed(1)}`);
    }
    console.log(`idle for ${idle} s: ${per(total).toFixed(1)} Redis commands per replica per minute (${rows.join(', ')}); ` +
        `${Math.round(per(inB))} bytes in, ${Math.round(per(outB))} bytes out per replica per minute (the bench's INFO calls included)`);
} finally {
    await replicas?.stop();
    await up.stop();
    await redis.stop();
    await pebble.stop();
}
process.exit(0);
