import fetch from "node-fetch";
import { WebSocket } from "ws";
import chai from "chai";
import chaiString from "chai-string";

chai.use(chaiString);

globalThis.fetch = fetch;
// frutos: browser semantics, one "message" event per task (see README.md)
globalThis.WebSocket = class extends WebSocket {
  constructor(address, protocols, options) {
    super(address, protocols, { allowSynchronousEvents: false, ...options });
  }
};
globalThis.chai = chai;
