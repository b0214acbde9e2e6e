// Apps for `strata serve`.
export { helloApp, HELLO_BODY } from './hello.js';
export { echoApp, tcpEcho, pipeToResponse } from './echo.js';
export { tcpDiscard } from './discard.js';
