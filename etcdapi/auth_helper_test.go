package etcdapi_test

import "github.com/kvstore/kvstore/auth"

func authPerm(key, end string) auth.Permission {
	return auth.Permission{Type: auth.Read, Key: []byte(key), End: []byte(end)}
}
