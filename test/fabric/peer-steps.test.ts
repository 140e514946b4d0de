import { describe, expect, it } from "vitest";
import { failedAttemptError, stalledAttemptError, stepOfSimplePeerCode } from "../../src/fabric/peer-steps.ts";

describe("naming the step of a failed link", () => {
  it("maps simple-peer's error codes to signaling, ICE or channel", () => {
    for (const code of ["ERR_ICE_CONNECTION_FAILURE", "ERR_ICE_CONNECTION_CLOSED", "ERR_CONNECTION_FAILURE"]) expect(stepOfSimplePeerCode(code)).toBe("ice");
    expect(stepOfSimplePeerCode("ERR_DATA_CHANNEL")).toBe("channel");
    for (const code of ["ERR_SIGNALING", "ERR_SET_REMOTE_DESCRIPTION", "ERR_ADD_ICE_CANDIDATE", "ERR_CREATE_OFFER", "ERR_WEBRTC_SUPPORT", undefined])
      expect(stepOfSimplePeerCode(code)).toBe("signaling");
    const e = failedAttemptError(3, "ERR_ICE_CONNECTION_FAILURE", "Ice connection failed.");
    expect(e.code).toBe("ice");
    expect(e.message).toBe("link to tab 3 failed at the ice step: Ice connection failed. (ERR_ICE_CONNECTION_FAILURE)");
  });

  it("says where an attempt that ran out of time stalled", () => {
    expect(stalledAttemptError(2, 20000, { remoteDescription: false, iceConnected: false })).toMatchObject({ code: "signaling", message: expect.stringMatching(/no offer\/answer came back within 20000 ms/) });
    expect(stalledAttemptError(2, 20000, { remoteDescription: true, iceConnected: false })).toMatchObject({ code: "ice", message: expect.stringMatching(/no working network path/) });
    expect(stalledAttemptError(2, 20000, { remoteDescription: true, iceConnected: true })).toMatchObject({ code: "channel", message: expect.stringMatching(/data channel did not open/) });
  });
});
