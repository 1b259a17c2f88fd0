// granax 3.2.0 ships no types. Only the parts src/tor/control.ts uses are declared here.
declare module 'granax' {
  import type { EventEmitter } from 'node:events';
  import type { Duplex } from 'node:stream';

  type Callback<T = unknown> = (err: Error | null, result?: T) => void;

  export interface AddOnionOptions {
    keyType?: string;
    keyBlob?: string;
    virtualPort?: number;
    detach?: boolean;
    discardPrivateKey?: boolean;
  }

  export class TorController extends EventEmitter {
    constructor(socket: Duplex, options?: { authOnConnect?: boolean });
    static createChallengeResponse(cookieHex: string, clientNonceHex: string, serverNonceHex: string): string;
    getProtocolInfo(callback: Callback): void;
    getAuthChallenge(clientNonceHex: string, callback: Callback): void;
    authenticate(token: string, callback: Callback): void;
    createHiddenService(target: string, options: AddOnionOptions, callback: Callback): void;
    destroyHiddenService(serviceId: string, callback: Callback): void;
    getConfig(keyword: string, callback: Callback): void;
    getInfo(keyword: string, callback: Callback): void;
    signal(name: string, callback: Callback): void;
    addEventListeners(events: string[], callback: Callback): void;
    quit(callback: Callback): void;
    fetchHiddenServiceDescriptor(serviceId: string, serverLongName: string, callback: Callback): void;
    /**
     * Private in granax, but the only way to send a command its builders cannot express (its
     * ADD_ONION knows no MaxStreams or PoW keywords). Writes `command` + CRLF.
     */
    _send(command: string, callback: Callback): void;
  }

  const granax: { TorController: typeof TorController };
  export default granax;
}
