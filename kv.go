package kvstore

import (
	"context"
	"errors"
	"time"

	"github.com/kvstore/kvstore/internal/wire"
	"github.com/kvstore/kvstore/mvcc"
)

// PutResponse answers Put.
type PutResponse struct {
	Header Header
	// PrevKV is the key before the put, with WithPrevKV.
	PrevKV *KeyValue
}

// GetResponse answers Get.
type GetResponse struct {
	Header Header
	KVs    []KeyValue
	// Count is the number of keys in the range, before limit and filters.
	Count int64
	// More reports that the limit cut off keys.
	More bool
}

// DeleteResponse answers Delete.
type DeleteResponse struct {
	Header  Header
	Deleted int64
	// PrevKVs are the deleted keys, with WithPrevKV.
	PrevKVs []KeyValue
}

// Put writes key. It returns once the write is committed and applied on
// this node; a write whose ctx ends first may still commit. Options that do
// not apply to a put are ErrInvalidOpOption.
func (n *Node) Put(ctx context.Context, key, value []byte, opts ...OpOption) (*PutResponse, error) {
	o := OpPut(key, value, opts...)
	req, err := o.mvccOp()
	if err != nil {
		return nil, err
	}
	res, err := n.propose(ctx, wire.PutCommand(req.Put))
	if err != nil {
		return nil, err
	}
	return &PutResponse{Header: n.header(res.Revision), PrevKV: res.Put.PrevKV}, nil
}

// Delete deletes key, or a range with WithRange, WithPrefix or WithFromKey,
// like Put in its guarantees.
func (n *Node) Delete(ctx context.Context, key []byte, opts ...OpOption) (*DeleteResponse, error) {
	o := OpDelete(key, opts...)
	req, err := o.mvccOp()
	if err != nil {
		return nil, err
	}
	res, err := n.propose(ctx, &wire.Command{Kind: wire.CmdDelete, Delete: wire.DeleteOf(req.Delete)})
	if err != nil {
		return nil, err
	}
	return &DeleteResponse{Header: n.header(res.Revision), Deleted: res.Delete.Deleted, PrevKVs: res.Delete.PrevKVs}, nil
}

// Get reads key, or a range. It is linearizable unless WithSerializable:
// it sees every write acknowledged by any member before it was called.
func (n *Node) Get(ctx context.Context, key []byte, opts ...OpOption) (*GetResponse, error) {
	return n.get(ctx, true, key, opts...)
}

// get is Get; refuseCorrupt false reads this member's state even under a
// CORRUPT alarm of its own, for the health checks alone (they report the
// alarm through their own check, and a member that can still read its
// state is alive).
func (n *Node) get(ctx context.Context, refuseCorrupt bool, key []byte, opts ...OpOption) (*GetResponse, error) {
	defer n.warnIfSlow("range", time.Now())
	o := OpGet(key, opts...)
	if o.err != nil {
		return nil, o.err
	}
	// Built here rather than by mvccOp, which returns it by pointer: the
	// store does not keep it, so it stays on the stack.
	req := o.settings.rangeRequest()
	if !o.settings.serializable {
		if err := n.readIndex(ctx); err != nil {
			return nil, err
		}
	}
	if refuseCorrupt {
		if err := n.refuseIfCorrupt(); err != nil {
			return nil, err
		}
	}
	res, err := n.fsm.rangeKeys(&req)
	if err != nil {
		if errors.Is(err, mvcc.ErrClosed) {
			return nil, n.errClosed()
		}
		return nil, err
	}
	return &GetResponse{Header: n.header(res.Revision), KVs: res.KVs, Count: res.Count, More: res.More}, nil
}
