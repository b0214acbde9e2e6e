// `hello`: a small fixed 200, served from one preserialized buffer. The
// benchmark app: what it measures is the transport and the server, not the app.
import { FixedResponse, type Handler } from '../l7/server/index.js';

export const HELLO_BODY = 'Hello, World!\n';
const hello = new FixedResponse(200, { 'Content-Type': 'text/plain' }, HELLO_BODY);

export const helloApp: Handler = (_req, res) => { res.sendFixed(hello); };
