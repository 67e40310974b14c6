// grpc-js + grpc-js-xds: call helloworld.Greeter/SayHello on an xds:/// target N times and
// print {"counts": {replica: n}, "errors": {code: n}} as JSON. GRPC_XDS_BOOTSTRAP must be set.
// usage: node xds_client.js xds:///greeter.default.svc.cluster.local:50051 400
'use strict';
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
require('@grpc/grpc-js-xds').register();

const [target, countArg] = process.argv.slice(2);
const total = parseInt(countArg || '100', 10);
const def = protoLoader.loadSync(path.join(__dirname, '..', '..', 'protos', 'helloworld.proto'));
const Greeter = grpc.loadPackageDefinition(def).helloworld.Greeter;
const client = new Greeter(target, grpc.credentials.createInsecure());

function call() {
  return new Promise((resolve) => {
    let replica = '';
    const c = client.sayHello({ name: 'grpc-js' }, { deadline: Date.now() + 10000 }, (err) => {
      resolve(err ? { error: grpc.status[err.code] || String(err.code) } : { replica });
    });
    c.on('metadata', (md) => { replica = String(md.get('x-replica')[0] || ''); });
  });
}

(async () => {
  const counts = {};
  const errors = {};
  const deadline = Date.now() + 60000;
  for (let i = 0; i < total && Date.now() < deadline; i++) {
    const r = await call();
    if (r.error) errors[r.error] = (errors[r.error] || 0) + 1;
    else counts[r.replica] = (counts[r.replica] || 0) + 1;
  }
  process.stdout.write(JSON.stringify({ counts, errors }) + '\n');
  client.close();
  process.exit(0);
})();
