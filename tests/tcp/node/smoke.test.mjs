// Smoke test: the real toxiproxy-node-client (npm, 4.1.0) against Brownout's
// Toxiproxy-compatible API. Run by tests/tcp/test_node_client.py, which starts the server
// and a redis-server and passes their addresses in TOXIPROXY_URL and UPSTREAM.
import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import client from "toxiproxy-node-client";

const { Toxiproxy } = client;
const api = process.env.TOXIPROXY_URL;
const upstream = process.env.UPSTREAM;

// One Redis PING round trip through the proxy on `port`, in milliseconds.
function pingMs(port) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port, noDelay: true }, () => {
      const start = performance.now();
      socket.once("data", (data) => {
        socket.destroy();
        if (data.toString() === "+PONG\r\n") resolve(performance.now() - start);
        else reject(new Error(`unexpected reply ${JSON.stringify(data.toString())}`));
      });
      socket.write("PING\r\n");
    });
    socket.setTimeout(5000, () => { socket.destroy(); reject(new Error("timeout")); });
    socket.on("error", reject);
  });
}

test("proxy and toxic lifecycle with toxiproxy-node-client", async () => {
  assert.ok(api && upstream, "TOXIPROXY_URL and UPSTREAM must be set");
  const toxiproxy = new Toxiproxy(api);
  assert.match(await toxiproxy.getVersion(), /"version": "2\.12\.0"/);

  const proxy = await toxiproxy.createProxy({ name: "node-redis", listen: "127.0.0.1:0", upstream });
  assert.equal(proxy.enabled, true);
  const port = Number(proxy.listen.split(":").pop());
  assert.ok(port > 0);
  const base = await pingMs(port);

  const toxic = await proxy.addToxic({
    type: "latency", name: "lag", stream: "downstream", toxicity: 1, attributes: { latency: 100, jitter: 0 },
  });
  assert.deepEqual(toxic.attributes, { latency: 100, jitter: 0 });
  const slow = await pingMs(port);
  assert.ok(slow - base >= 80 && slow - base <= 140, `latency toxic added ${slow - base} ms`);

  const all = await toxiproxy.getAll();
  assert.deepEqual(Object.keys(all), ["node-redis"]);
  assert.equal((await toxiproxy.get("node-redis")).listen, proxy.listen);
  assert.equal((await proxy.getToxic("lag")).type, "latency");

  const updated = await toxic.update({ attributes: { jitter: 5 } });
  assert.deepEqual(updated.attributes, { latency: 100, jitter: 5 });

  await toxic.remove();
  await assert.rejects(proxy.getToxic("lag"), /404/);
  assert.ok((await pingMs(port)) < base + 50);

  const down = await proxy.update({ enabled: false });
  assert.equal(down.enabled, false);
  await assert.rejects(pingMs(port));
  assert.deepEqual(await toxiproxy.populate([]), {});  // [] for an empty populate, not null
  await toxiproxy.reset();
  assert.equal((await toxiproxy.get("node-redis")).enabled, true);

  await proxy.remove();
  await assert.rejects(toxiproxy.get("node-redis"), /404/);
});
