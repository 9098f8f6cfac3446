// SPDX-License-Identifier: Apache-2.0

package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opaquevault/opaquevault/internal/store"
)

// RunMulti checks what must hold when several instances (a and b: two handles, with their own
// connection pools, on one database) serve at once: a compare-and-swap decided across instances
// has one winner, no update is lost, and what one instance wrote the other reads at once. The
// caller closes a and b.
func RunMulti(t *testing.T, a, b store.Store) {
	pick := func(i int) store.Store {
		if i%2 == 0 {
			return a
		}
		return b
	}
	t.Run("ReadYourWritesAcross", func(t *testing.T) {
		acct, dev := mkAccount(t, a)
		if _, err := b.Device(ctx, dev.KeyID); err != nil {
			t.Fatalf("account made on a, read on b: %v", err)
		}
		env := mkEnv(t, b, mkApp(t, b, acct.ID, "web"), "prod")
		must(t, a.CommitEnv(ctx, &store.Commit{EnvID: env.ID, ExpectedSeq: 0, Seq: 1, Manifest: rnd(10), ManifestSig: rnd(64),
			Put: []store.Record{rec(rnd(16), 1, 10)}, At: now}), "commit on a")
		v := readEnv(t, b, env.ID, store.ReadOptions{Records: store.RecordsFull})
		if v.Env.Seq != 1 || len(v.Records) != 1 {
			t.Fatalf("b reads seq %d with %d records after a committed seq 1", v.Env.Seq, len(v.Records))
		}
		sa, err := a.ServerSecret(ctx)
		must(t, err, "server secret on a")
		sb, err := b.ServerSecret(ctx)
		must(t, err, "server secret on b")
		if !bytes.Equal(sa, sb) {
			t.Fatal("the instances have different server secrets")
		}
	})
	t.Run("CommitRacingAcross", func(t *testing.T) {
		acct, _ := mkAccount(t, a)
		env := mkEnv(t, a, mkApp(t, a, acct.ID, "web"), "prod")
		const n = 8
		var wins, conflicts atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				err := pick(i).CommitEnv(ctx, &store.Commit{EnvID: env.ID, ExpectedSeq: 0, Seq: 1, Manifest: []byte{byte(i)}, ManifestSig: rnd(64),
					Put: []store.Record{rec(rnd(16), 1, 32)}, At: now})
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, store.ErrConflict):
					conflicts.Add(1)
				default:
					t.Errorf("racing commit: %v", err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if wins.Load() != 1 || conflicts.Load() != n-1 {
			t.Fatalf("%d wins and %d conflicts across instances, want 1 and %d", wins.Load(), conflicts.Load(), n-1)
		}
		for _, s := range []store.Store{a, b} {
			if v := readEnv(t, s, env.ID, store.ReadOptions{Records: store.RecordsIndex}); v.Env.Seq != 1 || len(v.Records) != 1 || v.Env.Count != 1 {
				t.Fatalf("after the race: seq %d, %d records, count %d", v.Env.Seq, len(v.Records), v.Env.Count)
			}
		}
	})
	t.Run("NoLostUpdateAcross", func(t *testing.T) {
		acct, _ := mkAccount(t, a)
		env := mkEnv(t, a, mkApp(t, a, acct.ID, "web"), "prod")
		const writers, rounds = 4, 6
		var wg sync.WaitGroup
		blinds := make([][]byte, writers)
		for i := range writers {
			blinds[i] = rnd(16)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := 1; r <= rounds; {
					// Read on one instance, write on the other.
					v, err := pick(i+r).ReadEnv(ctx, env.ID, store.ReadOptions{Records: store.RecordsIndex})
					if err != nil {
						t.Errorf("read: %v", err)
						return
					}
					err = pick(i+r+1).CommitEnv(ctx, &store.Commit{EnvID: env.ID, ExpectedSeq: v.Env.Seq, Seq: v.Env.Seq + 1, Manifest: rnd(16),
						ManifestSig: rnd(64), Put: []store.Record{rec(blinds[i], uint64(r), 16)}, At: now})
					switch {
					case err == nil:
						r++
					case errors.Is(err, store.ErrConflict):
					default:
						t.Errorf("commit: %v", err)
						return
					}
				}
			}()
		}
		wg.Wait()
		v := readEnv(t, b, env.ID, store.ReadOptions{Records: store.RecordsIndex})
		if v.Env.Seq != writers*rounds || len(v.Records) != writers {
			t.Fatalf("seq %d with %d records, want %d with %d", v.Env.Seq, len(v.Records), writers*rounds, writers)
		}
		for _, r := range v.Records {
			if r.Version != rounds {
				t.Errorf("record %x at version %d, want %d: an update was lost", r.Blind, r.Version, rounds)
			}
		}
	})
	t.Run("ReadsConsistentAcross", func(t *testing.T) {
		// A writer on a replaces every record at each commit (all at the commit's seq, a varying
		// number of them); readers on b must always see one commit whole: the env's seq and count
		// and exactly its records, never a mix of two.
		acct, _ := mkAccount(t, a)
		env := mkEnv(t, a, mkApp(t, a, acct.ID, "web"), "prod")
		blinds := make([][]byte, 12)
		for i := range blinds {
			blinds[i] = rnd(16)
		}
		var stop atomic.Bool
		var reads atomic.Int32
		var wg sync.WaitGroup
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					v, err := b.ReadEnv(ctx, env.ID, store.ReadOptions{Records: store.RecordsIndex})
					if err != nil {
						t.Errorf("read: %v", err)
						return
					}
					reads.Add(1)
					if v.Env.Count != len(v.Records) {
						t.Errorf("torn read: count %d, %d records", v.Env.Count, len(v.Records))
						return
					}
					for _, r := range v.Records {
						if r.Version != v.Env.Seq {
							t.Errorf("torn read: a record of seq %d in the env at seq %d", r.Version, v.Env.Seq)
							return
						}
					}
				}
			}()
		}
		for seq := uint64(0); seq < 40; seq++ {
			c := &store.Commit{EnvID: env.ID, ExpectedSeq: seq, Seq: seq + 1, Manifest: rnd(16), ManifestSig: rnd(64), At: now}
			n := 1 + int(seq*7)%len(blinds)
			for _, bl := range blinds[:n] {
				c.Put = append(c.Put, rec(bl, seq+1, 16))
			}
			c.Delete = blinds[n:]
			must(t, a.CommitEnv(ctx, c), "commit")
		}
		stop.Store(true)
		wg.Wait()
		if reads.Load() == 0 {
			t.Fatal("no reads ran")
		}
	})
	t.Run("ChangePasswordRacingAcross", func(t *testing.T) {
		acct, _ := mkAccount(t, a)
		var wins, conflicts atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				err := pick(i).ChangePassword(ctx, &store.PasswordChange{AccountID: acct.ID, OldLoginVerifier: acct.LoginVerifier,
					KDF: acct.KDF, WrappedAK: rnd(74), AKVersion: 1, KeyCheck: rnd(32), LoginVerifier: rnd(32), At: now.Add(time.Hour)})
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, store.ErrConflict):
					conflicts.Add(1)
				default:
					t.Errorf("racing password change: %v", err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d password changes from one old verifier succeeded, want 1", wins.Load())
		}
	})
	t.Run("UniqueAcross", func(t *testing.T) {
		var wins, exists atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		email := fmt.Sprintf("same-%x@example.com", rnd(4))
		for i := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				acct, dev := newAccount(email)
				<-start
				err := pick(i).CreateAccount(ctx, acct, dev)
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, store.ErrExists):
					exists.Add(1)
				default:
					t.Errorf("racing create: %v", err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d accounts with one email, want 1", wins.Load())
		}
	})
}
