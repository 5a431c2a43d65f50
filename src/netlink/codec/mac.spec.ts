import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatMac, parseMac } from "./mac.js";

describe("MAC addresses", () => {
  it("parses and formats (lower case, two digits per byte)", () => {
    assert.deepEqual([...parseMac("02:aa:bb:0c:0d:ee")], [0x02, 0xaa, 0xbb, 0x0c, 0x0d, 0xee]);
    assert.deepEqual([...parseMac("FF:FF:FF:FF:FF:FF")], [255, 255, 255, 255, 255, 255]);
    assert.equal(formatMac(Buffer.from([0x02, 0, 0x5e, 0x0a, 0xbc, 1])), "02:00:5e:0a:bc:01");
    for (const m of ["00:00:00:00:00:00", "02:11:22:33:44:55", "ee:ee:ee:ee:ee:ee"]) assert.equal(formatMac(parseMac(m)), m);
    assert.equal(formatMac(parseMac("0A:1b:2C:3d:4E:5f")), "0a:1b:2c:3d:4e:5f");
  });

  it("refuses bad MACs", () => {
    const bad = ["", "02:aa:bb:cc:dd", "02:aa:bb:cc:dd:ee:ff", "02-aa-bb-cc-dd-ee", "02aa.bbcc.ddee", "2:aa:bb:cc:dd:ee", "002:aa:bb:cc:dd:ee", "02:aa:bb:cc:dd:eg", "02:aa:bb:cc:dd:ee:", " 02:aa:bb:cc:dd:ee", "02:aa:bb:cc:dd:+e"];
    for (const m of bad) assert.throws(() => parseMac(m), /invalid MAC address/, JSON.stringify(m));
  });
});
