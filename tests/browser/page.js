// A real gRPC-Web client in the browser: the official `grpc-web` runtime (GrpcWebClientBase),
// with hand-written protobuf codecs for the two tiny messages, so no code generator is needed.
// The gateway URL comes from the page's ?gateway= parameter; results go into the DOM.
import { GrpcWebClientBase, MethodDescriptor, MethodType } from 'grpc-web';

function encodeString(field, s) {
  const bytes = new TextEncoder().encode(s);
  return Uint8Array.from([(field << 3) | 2, bytes.length, ...bytes]); // names here are < 128 bytes
}

function readVarint(buf, pos) {
  let result = 0, shift = 0, b;
  do { b = buf[pos++]; result |= (b & 0x7f) << shift; shift += 7; } while (b & 0x80);
  return [result, pos];
}

function decodeStringField1(buf) {
  let pos = 0;
  while (pos < buf.length) {
    let key; [key, pos] = readVarint(buf, pos);
    const field = key >> 3, wire = key & 7;
    if (wire === 2) {
      let len; [len, pos] = readVarint(buf, pos);
      if (field === 1) return new TextDecoder().decode(buf.slice(pos, pos + len));
      pos += len;
    } else if (wire === 0) { [, pos] = readVarint(buf, pos); }
    else if (wire === 5) pos += 4; else if (wire === 1) pos += 8; else break;
  }
  return '';
}

class Bytes { constructor(b) { this.b = b; } serializeBinary() { return this.b; } }
const decode = (b) => ({ text: decodeStringField1(b) });

const sayHello = new MethodDescriptor('/helloworld.Greeter/SayHello', MethodType.UNARY, Bytes, Object,
  (req) => req.serializeBinary(), decode);
const listFeatures = new MethodDescriptor('/routeguide.RouteGuide/ListFeatures', MethodType.SERVER_STREAMING,
  Bytes, Object, (req) => req.serializeBinary(), decode);

const gateway = new URLSearchParams(location.search).get('gateway');
const client = new GrpcWebClientBase({ format: 'text' });
const show = (id, text) => { document.getElementById(id).textContent = text; };

client.rpcCall(gateway + '/helloworld.Greeter/SayHello', new Bytes(encodeString(1, 'browser')), {}, sayHello,
  (err, reply) => show('unary', err ? `error ${err.code}: ${err.message}` : reply.text));

const names = [];
const stream = client.serverStreaming(gateway + '/routeguide.RouteGuide/ListFeatures', new Bytes(new Uint8Array(0)),
  { 'x-stream-count': '3' }, listFeatures);
stream.on('data', (f) => names.push(f.text));
stream.on('error', (err) => show('stream', `error ${err.code}: ${err.message}`));
stream.on('end', () => show('stream', `${names.length} features: ${names.join(' | ')}`));
