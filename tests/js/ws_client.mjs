// A browser-like MQTT client for the whole-broker tests: MQTT.js (the library web pages use) over
// ws:// or wss://. Connects, subscribes, optionally publishes, and prints every message it receives
// as one JSON line on stdout, then exits after `count` messages or `timeout` ms.
//
//   node ws_client.mjs --url ws://127.0.0.1:PORT/mqtt --username KEY --subscribe '#' \
//        --count 1 --timeout 5000 [--publish topic=payload] [--version 4|5] [--ca file]
import fs from 'node:fs';
import mqtt from 'mqtt';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const count = Number(args.count ?? 1);
const options = {
  protocolVersion: Number(args.version ?? 5),
  username: args.username,
  clientId: args.client ?? `ws-test-${process.pid}`,
  reconnectPeriod: 0,
  connectTimeout: 5000,
};
if (args.ca) options.ca = fs.readFileSync(args.ca);
const client = mqtt.connect(args.url, options);
let received = 0;
const finish = (code) => { client.end(true, () => process.exit(code)); setTimeout(() => process.exit(code), 500); };
setTimeout(() => { console.log(JSON.stringify({ timeout: true, received })); finish(received >= count ? 0 : 2); },
           Number(args.timeout ?? 5000));
client.on('error', (e) => { console.log(JSON.stringify({ error: e.message, code: e.code ?? null })); finish(3); });
client.on('connect', () => {
  console.log(JSON.stringify({ connected: true }));
  const afterSubscribe = () => {
    if (args.publish) {
      const [topic, payload] = args.publish.split('=');
      client.publish(topic, payload, { qos: 1 }, (err) => console.log(JSON.stringify({ published: topic, error: err ? err.message : null })));
    }
  };
  if (args.subscribe) {
    client.subscribe(args.subscribe, { qos: 1 }, (err, granted) => {
      console.log(JSON.stringify({ subscribed: args.subscribe, granted: granted?.map((g) => g.qos), error: err ? err.message : null }));
      afterSubscribe();
    });
  } else {
    afterSubscribe();
  }
});
client.on('message', (topic, payload) => {
  console.log(JSON.stringify({ topic, payload: payload.toString() }));
  if (++received >= count && args.subscribe) finish(0);
});
