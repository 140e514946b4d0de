// simple-peer's prebuilt browser bundle (see peer-simple.ts for why we load it) has the same API
// as the package's main module, which @types/simple-peer describes.
declare module "simple-peer/simplepeer.min.js" {
  import SimplePeer from "simple-peer";
  export default SimplePeer;
}
