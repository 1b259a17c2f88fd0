/**
 * Stands in for node:crypto in the browser bundle. node-forge requires 'crypto' only when it
 * believes it runs in Node (forge.util.isNodejs, false in a browser), so nothing here is used.
 */
export {};
