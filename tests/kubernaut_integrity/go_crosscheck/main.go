// Command crosscheck checks our transparency-log outputs with Go's reference code:
// golang.org/x/mod/sumdb/note (signed notes) and golang.org/x/mod/sumdb/tlog (RFC 6962 proofs).
//
// It reads one JSON document on standard input:
//
//	{"leaves": [base64 leaf data, ...],
//	 "checkpoints": [{"note": "...", "log_vkeys": ["..."], "witness_vkeys": ["..."]}],
//	 "inclusion": [{"index": 3, "size": 10, "root": base64, "proof": [base64, ...]}],
//	 "consistency": [{"old_size": 3, "old_root": ..., "new_size": 10, "new_root": ..., "proof": [...]}]}
//
// and writes one JSON verdict per item: for checkpoints, the keys whose signatures note.Open
// verified (witness cosignatures through a verifier of the tlog-cosignature type 0x04) and
// the parsed checkpoint; for proofs, tlog.CheckRecord / tlog.CheckTree. Independently, it
// rebuilds the log from the leaves with tlog.StoredHashes and reports whether its own tree
// hashes and proofs (tlog.TreeHash, ProveRecord, ProveTree) equal ours byte for byte.
// Exit status 1 when any verdict is not "ok".
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type checkpointInput struct {
	Note         string   `json:"note"`
	LogVkeys     []string `json:"log_vkeys"`
	WitnessVkeys []string `json:"witness_vkeys"`
}

type inclusionInput struct {
	Index int64       `json:"index"`
	Size  int64       `json:"size"`
	Root  tlog.Hash   `json:"root"`
	Proof []tlog.Hash `json:"proof"`
}

type consistencyInput struct {
	OldSize int64       `json:"old_size"`
	OldRoot tlog.Hash   `json:"old_root"`
	NewSize int64       `json:"new_size"`
	NewRoot tlog.Hash   `json:"new_root"`
	Proof   []tlog.Hash `json:"proof"`
}

type input struct {
	Leaves      [][]byte           `json:"leaves"`
	Checkpoints []checkpointInput  `json:"checkpoints"`
	Inclusion   []inclusionInput   `json:"inclusion"`
	Consistency []consistencyInput `json:"consistency"`
}

type checkpointVerdict struct {
	Verdict  string   `json:"verdict"`
	Origin   string   `json:"origin,omitempty"`
	Size     int64    `json:"size,omitempty"`
	SignedBy []string `json:"signed_by,omitempty"`
	Unknown  []string `json:"unknown,omitempty"`
	GoRoot   string   `json:"go_root,omitempty"`
}

type output struct {
	Checkpoints []checkpointVerdict `json:"checkpoints"`
	Inclusion   []string            `json:"inclusion"`
	Consistency []string            `json:"consistency"`
}

// cosignatureVerifier verifies C2SP tlog-cosignature/v1 Ed25519 cosignatures (type 0x04),
// which note.NewVerifier does not know: timestamp (8 bytes) || Ed25519 over
// "cosignature/v1\ntime <t>\n" || note text.
type cosignatureVerifier struct {
	name string
	hash uint32
	key  ed25519.PublicKey
}

func (v cosignatureVerifier) Name() string    { return v.name }
func (v cosignatureVerifier) KeyHash() uint32 { return v.hash }
func (v cosignatureVerifier) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	t := binary.BigEndian.Uint64(sig[:8])
	if t > math.MaxInt64 {
		return false
	}
	signed := append([]byte(fmt.Sprintf("cosignature/v1\ntime %d\n", t)), msg...)
	return ed25519.Verify(v.key, signed, sig[8:])
}

func newCosignatureVerifier(vkey string) (note.Verifier, error) {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return nil, errors.New("malformed witness vkey")
	}
	key, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(key) != 1+ed25519.PublicKeySize || key[0] != 0x04 {
		return nil, errors.New("not a cosignature/v1 vkey")
	}
	sum := sha256.Sum256(append([]byte(parts[0]+"\n"), key...))
	hash := binary.BigEndian.Uint32(sum[:4])
	if fmt.Sprintf("%08x", hash) != parts[1] {
		return nil, errors.New("witness vkey hash mismatch")
	}
	return cosignatureVerifier{name: parts[0], hash: hash, key: ed25519.PublicKey(key[1:])}, nil
}

// parseCheckpoint applies the C2SP tlog-checkpoint rules to a note's text.
func parseCheckpoint(text string) (string, int64, tlog.Hash, error) {
	if !strings.HasSuffix(text, "\n") {
		return "", 0, tlog.Hash{}, errors.New("checkpoint text does not end in a newline")
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 3 {
		return "", 0, tlog.Hash{}, errors.New("checkpoint has fewer than three lines")
	}
	for _, line := range lines {
		if line == "" {
			return "", 0, tlog.Hash{}, errors.New("checkpoint has an empty line")
		}
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return "", 0, tlog.Hash{}, fmt.Errorf("bad tree size %q", lines[1])
	}
	root, err := tlog.ParseHash(lines[2])
	if err != nil {
		return "", 0, tlog.Hash{}, fmt.Errorf("bad root hash: %v", err)
	}
	return lines[0], size, root, nil
}

func main() {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fmt.Fprintln(os.Stderr, "crosscheck: reading input:", err)
		os.Exit(2)
	}

	// Go's own log over the same leaves, in its stored-hash layout.
	var stored []tlog.Hash
	reader := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		hashes := make([]tlog.Hash, len(indexes))
		for i, index := range indexes {
			if index < 0 || index >= int64(len(stored)) {
				return nil, fmt.Errorf("no stored hash %d", index)
			}
			hashes[i] = stored[index]
		}
		return hashes, nil
	})
	for i, leaf := range in.Leaves {
		hashes, err := tlog.StoredHashes(int64(i), leaf, reader)
		if err != nil {
			fmt.Fprintln(os.Stderr, "crosscheck: building the log:", err)
			os.Exit(2)
		}
		stored = append(stored, hashes...)
	}
	size := int64(len(in.Leaves))

	failed := false
	out := output{Checkpoints: []checkpointVerdict{}, Inclusion: []string{}, Consistency: []string{}}
	verdict := func(err error) string {
		if err != nil {
			failed = true
			return err.Error()
		}
		return "ok"
	}

	for _, c := range in.Checkpoints {
		var verifiers []note.Verifier
		var err error
		for _, vkey := range c.LogVkeys {
			var v note.Verifier
			if v, err = note.NewVerifier(vkey); err != nil {
				break
			}
			verifiers = append(verifiers, v)
		}
		for _, vkey := range c.WitnessVkeys {
			var v note.Verifier
			if err != nil {
				break
			}
			if v, err = newCosignatureVerifier(vkey); err == nil {
				verifiers = append(verifiers, v)
			}
		}
		var n *note.Note
		if err == nil {
			n, err = note.Open([]byte(c.Note), note.VerifierList(verifiers...))
		}
		if err != nil {
			out.Checkpoints = append(out.Checkpoints, checkpointVerdict{Verdict: verdict(err)})
			continue
		}
		origin, treeSize, root, err := parseCheckpoint(n.Text)
		v := checkpointVerdict{Origin: origin, Size: treeSize}
		for _, s := range n.Sigs {
			v.SignedBy = append(v.SignedBy, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
		}
		for _, s := range n.UnverifiedSigs {
			v.Unknown = append(v.Unknown, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
		}
		if err == nil && treeSize <= size && treeSize > 0 {
			var goRoot tlog.Hash
			if goRoot, err = tlog.TreeHash(treeSize, reader); err == nil {
				v.GoRoot = goRoot.String()
				if goRoot != root {
					err = errors.New("checkpoint root differs from Go's tree hash over the leaves")
				}
			}
		}
		v.Verdict = verdict(err)
		out.Checkpoints = append(out.Checkpoints, v)
	}

	for _, p := range in.Inclusion {
		var err error
		if p.Index < 0 || p.Index >= size {
			err = fmt.Errorf("leaf %d not among the %d leaves given", p.Index, size)
		} else {
			err = tlog.CheckRecord(p.Proof, p.Size, p.Root, p.Index, tlog.RecordHash(in.Leaves[p.Index]))
		}
		if err == nil && p.Size <= size {
			var own tlog.RecordProof
			if own, err = tlog.ProveRecord(p.Size, p.Index, reader); err == nil && !sameHashes(own, p.Proof) {
				err = errors.New("proof differs from Go's tlog.ProveRecord")
			}
		}
		out.Inclusion = append(out.Inclusion, verdict(err))
	}

	for _, p := range in.Consistency {
		err := tlog.CheckTree(p.Proof, p.NewSize, p.NewRoot, p.OldSize, p.OldRoot)
		if err == nil && p.NewSize <= size {
			var own tlog.TreeProof
			if own, err = tlog.ProveTree(p.NewSize, p.OldSize, reader); err == nil && !sameHashes(own, p.Proof) {
				err = errors.New("proof differs from Go's tlog.ProveTree")
			}
		}
		out.Consistency = append(out.Consistency, verdict(err))
	}

	encoded, _ := json.Marshal(out)
	fmt.Println(string(encoded))
	if failed {
		os.Exit(1)
	}
}

func sameHashes(a, b []tlog.Hash) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i][:], b[i][:]) {
			return false
		}
	}
	return true
}
