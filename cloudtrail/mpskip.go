package cloudtrail

import "encoding/binary"

// Skipping values is most of the work of reading a record in place: every
// member of a record's top level is stepped over once while the chunk is
// read, and the maps a rule reads below it once more. mpSkip does what
// msgp.Skip does (the same bytes after the value, the same refusals) in one
// loop with a count of values still to step over, instead of a recursive
// call per value; FuzzSkip holds it to msgp.Skip.

// mpFixed is the encoded size of each lead byte whose value has a size
// known from the lead alone (0 for the others).
var mpFixed = func() (t [256]uint8) {
	for i := 0x00; i <= 0x7f; i++ {
		t[i] = 1 // positive fixint
	}
	for i := 0xe0; i <= 0xff; i++ {
		t[i] = 1 // negative fixint
	}
	for i := 0xa0; i <= 0xbf; i++ {
		t[i] = uint8(1 + i&0x1f) // fixstr
	}
	for lead, n := range map[int]uint8{
		0xc0: 1, 0xc2: 1, 0xc3: 1, // nil, false, true
		0xca: 5, 0xcb: 9, // float32, float64
		0xcc: 2, 0xcd: 3, 0xce: 5, 0xcf: 9, // uint8..64
		0xd0: 2, 0xd1: 3, 0xd2: 5, 0xd3: 9, // int8..64
		0xd4: 3, 0xd5: 4, 0xd6: 6, 0xd7: 10, 0xd8: 18, // fixext1..16
	} {
		t[lead] = n
	}
	return t
}()

// mpSkip returns the bytes after the MessagePack value at the start of b,
// or false when b does not hold a whole, valid value.
func mpSkip(b []byte) ([]byte, bool) {
	pending := uint64(1) // values still to step over
	for pending > 0 {
		if len(b) == 0 || pending > uint64(len(b)) { // each value takes a byte at least
			return nil, false
		}
		pending--
		lead := b[0]
		if n := mpFixed[lead]; n != 0 {
			if len(b) < int(n) {
				return nil, false
			}
			b = b[n:]
			continue
		}
		var size, more uint64 // bytes of this value's own encoding, values inside it
		switch {
		case lead == 0xd9: // str8, the common long string (ARNs, user agents)
			if len(b) < 2 {
				return nil, false
			}
			size = 2 + uint64(b[1])
		case lead&0xf0 == 0x80: // fixmap
			size, more = 1, 2*uint64(lead&0x0f)
		case lead&0xf0 == 0x90: // fixarray
			size, more = 1, uint64(lead&0x0f)
		default:
			hdr, length, ok := mpVarHeader(b)
			if !ok {
				return nil, false
			}
			switch lead {
			case 0xdc, 0xdd: // array16, array32
				size, more = hdr, length
			case 0xde, 0xdf: // map16, map32
				size, more = hdr, 2*length
			default: // str, bin, ext: the payload follows the header
				size = hdr + length
			}
		}
		if uint64(len(b)) < size {
			return nil, false
		}
		b = b[size:]
		pending += more
	}
	return b, true
}

// mpVarHeader reads the header of a value whose length follows its lead
// byte: the header's size and the length it gives (bytes for str, bin and
// ext, which add a type byte; elements for arrays and maps).
func mpVarHeader(b []byte) (hdr, length uint64, ok bool) {
	var width int
	var extra uint64 // ext's type byte
	switch b[0] {
	case 0xc4, 0xd9: // bin8, str8
		width = 1
	case 0xc5, 0xda, 0xdc, 0xde: // bin16, str16, array16, map16
		width = 2
	case 0xc6, 0xdb, 0xdd, 0xdf: // bin32, str32, array32, map32
		width = 4
	case 0xc7: // ext8
		width, extra = 1, 1
	case 0xc8: // ext16
		width, extra = 2, 1
	case 0xc9: // ext32
		width, extra = 4, 1
	default: // 0xc1, never used
		return 0, 0, false
	}
	if len(b) < 1+width+int(extra) {
		return 0, 0, false
	}
	switch width {
	case 1:
		length = uint64(b[1])
	case 2:
		length = uint64(binary.BigEndian.Uint16(b[1:]))
	default:
		length = uint64(binary.BigEndian.Uint32(b[1:]))
	}
	return uint64(1+width) + extra, length, true
}
