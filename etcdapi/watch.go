package etcdapi

import (
	"context"
	"sync"

	"github.com/kvstore/kvstore"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// progressWatchID is the watch ID of the answer to a stream's
// RequestProgress: it speaks for every watch of the stream (clientv3's
// InvalidWatchID).
const progressWatchID = -1

// defaultMaxFragmentBytes is the size above which a watch that asked for
// fragmentation gets its events split across responses: etcd's default
// --max-request-bytes, which etcd uses the same way.
const defaultMaxFragmentBytes = 3 * 512 * 1024

// watchService serves etcd's Watch service. Each stream is a watchStream;
// each of its watches a kvstore watch on the node, read by one goroutine.
type watchService struct {
	pb.UnimplementedWatchServer
	s *Server
}

// watchStream is one Watch stream.
//
// Lock order: mu before sendMu. The stream handler's goroutine reads
// requests; each watch's goroutine forwards its responses; all of them
// send under sendMu, because a gRPC stream's Send is not safe for
// concurrent use.
type watchStream struct {
	s      *Server
	stream pb.Watch_WatchServer
	ctx    context.Context // ends with the stream or with Server.Close
	wg     sync.WaitGroup  // the watches' goroutines
	sendMu sync.Mutex

	mu      sync.Mutex
	watches map[int64]*streamWatch
	nextID  int64
	// progressPending is set by a RequestProgress not yet answered;
	// bookmarks holds, for each watch that has reported one since, the
	// revision up to which it delivered everything.
	progressPending bool
	bookmarks       map[int64]int64
}

// streamWatch is one watch of a stream.
type streamWatch struct {
	id             int64
	cancel         context.CancelFunc
	progressNotify bool
	fragment       bool
}

func (w *watchService) Watch(stream pb.Watch_WatchServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	stop := context.AfterFunc(w.s.ctx, cancel)
	defer stop()
	ws := &watchStream{s: w.s, stream: stream, ctx: ctx, watches: map[int64]*streamWatch{}}
	if err := w.s.startStream(); err != nil {
		return err
	}
	defer w.s.streams.Done()
	defer ws.wg.Wait() // after cancel, which ends every watch
	defer cancel()

	reqs, recvErr := receive(ctx, stream.Recv)
	for {
		select {
		case <-ctx.Done():
			return w.s.streamEnded(ctx)
		case err := <-recvErr:
			return err
		case req := <-reqs:
			if err := ws.handle(req); err != nil {
				return err
			}
		}
	}
}

// handle serves one request of the stream. An error ends the stream.
func (ws *watchStream) handle(req *pb.WatchRequest) error {
	switch r := req.RequestUnion.(type) {
	case *pb.WatchRequest_CreateRequest:
		return ws.create(r.CreateRequest)
	case *pb.WatchRequest_CancelRequest:
		ws.mu.Lock()
		w := ws.watches[r.CancelRequest.WatchId]
		ws.mu.Unlock()
		if w != nil {
			// The watch's goroutine answers Canceled once its
			// channel closes, after its last event.
			w.cancel()
		}
	case *pb.WatchRequest_ProgressRequest:
		return ws.requestProgress()
	}
	return nil
}

func (ws *watchStream) create(r *pb.WatchCreateRequest) error {
	if refused := ws.refuseWatch(r); refused != nil {
		return ws.send(refused)
	}
	ws.mu.Lock()
	id := r.WatchId
	if id == 0 {
		for ws.watches[ws.nextID] != nil {
			ws.nextID++
		}
		id = ws.nextID
	} else if ws.watches[id] != nil {
		ws.mu.Unlock()
		return ws.send(ws.s.refusedWatch(errDuplicateWatchID))
	}
	opts := []kvstore.OpOption{kvstore.WithCreatedNotify()}
	if len(r.RangeEnd) > 0 {
		opts = append(opts, kvstore.WithRange(r.RangeEnd))
	}
	if r.StartRevision != 0 {
		opts = append(opts, kvstore.WithRev(r.StartRevision))
	}
	if r.PrevKv {
		opts = append(opts, kvstore.WithPrevKV())
	}
	if r.ProgressNotify {
		opts = append(opts, kvstore.WithProgressNotify())
	}
	for _, f := range r.Filters {
		switch f {
		case pb.WatchCreateRequest_NOPUT:
			opts = append(opts, kvstore.WithFilterPut())
		case pb.WatchCreateRequest_NODELETE:
			opts = append(opts, kvstore.WithFilterDelete())
		}
	}
	ctx, cancel := context.WithCancel(ws.ctx)
	ch, err := ws.s.node.Watch(ctx, r.Key, opts...)
	if err != nil {
		ws.mu.Unlock()
		cancel()
		return ws.send(ws.s.refusedWatch(err))
	}
	w := &streamWatch{id: id, cancel: cancel, progressNotify: r.ProgressNotify, fragment: r.Fragment}
	ws.watches[id] = w
	if id == ws.nextID {
		ws.nextID++
	}
	ws.mu.Unlock()
	ws.wg.Add(1)
	go ws.forward(w, ch)
	return nil
}

// forward sends w's responses until its channel closes, then its last
// response if the hub did not send one.
func (ws *watchStream) forward(w *streamWatch, ch kvstore.WatchChan) {
	defer ws.wg.Done()
	defer w.cancel()
	defer ws.remove(w.id)
	for resp := range ch {
		switch {
		case resp.Created:
			if ws.send(&pb.WatchResponse{Header: ws.header(resp.Revision), WatchId: w.id, Created: true}) != nil {
				return
			}
		case resp.Canceled:
			out := &pb.WatchResponse{Header: ws.header(resp.Revision), WatchId: w.id, Canceled: true, CompactRevision: resp.CompactRevision}
			if resp.Err != nil {
				out.CancelReason = toGRPC(resp.Err).Error()
			}
			ws.send(out)
			return
		case resp.IsProgressNotify():
			ws.bookmark(w.id, resp.Revision)
			if w.progressNotify && ws.send(&pb.WatchResponse{Header: ws.header(resp.Revision), WatchId: w.id}) != nil {
				return
			}
		default:
			if ws.sendEvents(w, resp) != nil {
				return
			}
			ws.bookmark(w.id, resp.Revision)
		}
	}
	if ws.ctx.Err() == nil {
		// Cancelled by the client (the stream is still open): etcd
		// confirms.
		ws.send(&pb.WatchResponse{Header: ws.s.currentHeader(), WatchId: w.id, Canceled: true})
	}
}

// sendEvents sends one response's events, split into fragments no larger
// than defaultMaxFragmentBytes each if the watch asked for it.
func (ws *watchStream) sendEvents(w *streamWatch, resp kvstore.WatchResponse) error {
	events := make([]*mvccpb.Event, len(resp.Events))
	for i := range resp.Events {
		events[i] = event(&resp.Events[i])
	}
	out := &pb.WatchResponse{Header: ws.header(resp.Revision), WatchId: w.id, Events: events}
	if !w.fragment || out.Size() <= defaultMaxFragmentBytes {
		return ws.send(out)
	}
	for len(events) > 0 {
		n, size := 0, 0
		for n < len(events) && (n == 0 || size+events[n].Size() <= defaultMaxFragmentBytes) {
			size += events[n].Size()
			n++
		}
		frag := &pb.WatchResponse{Header: out.Header, WatchId: w.id, Events: events[:n], Fragment: n < len(events)}
		if err := ws.send(frag); err != nil {
			return err
		}
		events = events[n:]
	}
	return nil
}

func (ws *watchStream) remove(id int64) {
	ws.mu.Lock()
	delete(ws.watches, id)
	delete(ws.bookmarks, id)
	ws.mu.Unlock()
	ws.answerProgress()
}

// requestProgress answers a RequestProgress: once every watch of the
// stream has reported a bookmark, one response for them all at the lowest
// of their revisions, so that it is true of each (etcd answers only when
// every watch of the stream is up to date).
func (ws *watchStream) requestProgress() error {
	ws.mu.Lock()
	ws.progressPending = true
	ws.bookmarks = map[int64]int64{}
	ws.mu.Unlock()
	if err := ws.s.node.RequestProgress(ws.ctx); err != nil {
		return toGRPC(err)
	}
	ws.answerProgress()
	return nil
}

// bookmark records that watch id delivered everything up to rev.
func (ws *watchStream) bookmark(id, rev int64) {
	ws.mu.Lock()
	if ws.progressPending {
		ws.bookmarks[id] = rev
	}
	ws.mu.Unlock()
	ws.answerProgress()
}

// answerProgress sends the answer to a pending RequestProgress once every
// watch has reported.
func (ws *watchStream) answerProgress() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if !ws.progressPending {
		return
	}
	header := ws.s.currentHeader()
	for id := range ws.watches {
		rev, ok := ws.bookmarks[id]
		if !ok {
			return
		}
		header.Revision = min(header.Revision, rev)
	}
	ws.progressPending = false
	ws.send(&pb.WatchResponse{Header: header, WatchId: progressWatchID})
}

func (ws *watchStream) send(resp *pb.WatchResponse) error {
	ws.sendMu.Lock()
	defer ws.sendMu.Unlock()
	return ws.stream.Send(resp)
}

func (ws *watchStream) header(rev int64) *pb.ResponseHeader {
	h := ws.s.currentHeader()
	h.Revision = rev
	return h
}

func event(e *kvstore.Event) *mvccpb.Event {
	out := &mvccpb.Event{Kv: keyValue(&e.KV), PrevKv: keyValue(e.PrevKV)}
	if e.Type == kvstore.EventDelete {
		out.Type = mvccpb.DELETE
	}
	return out
}
