// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title Wallet
/// @notice A contract wallet whose `receive()` does real work: every deposit writes the sender and the
/// value into fresh storage slots (two zero-to-nonzero SSTOREs, 22,100 gas each, on every call, not only
/// the first), updates the counter and the running total, and emits `Received`. For a nonzero value that
/// costs well over 40,000 gas of execution, so a plain transfer with gas = 21,000 (all of it intrinsic gas)
/// runs out of gas (receipt status 0), as does a Solidity `transfer`/`send` with the 2,300 gas stipend; the
/// executor must estimate gas for such a destination. Test fixture only: the funds it receives stay in it.
contract Wallet {
    /// @notice Number of deposits so far.
    uint256 public deposits;
    /// @notice Total wei received through `receive()`.
    uint256 public received;
    /// @notice Sender of deposit number `i` (1-based).
    mapping(uint256 => address) public senderOf;
    /// @notice Value of deposit number `i` (1-based).
    mapping(uint256 => uint256) public valueOf;

    event Received(address indexed from, uint256 value, uint256 index);

    receive() external payable {
        uint256 index = deposits + 1;
        deposits = index;
        received += msg.value;
        senderOf[index] = msg.sender;
        // Fresh slots on every deposit (the second one only for a nonzero value): later deposits are cheaper
        // than the first (deposits and received are then nonzero already) but still well above 40,000 gas.
        valueOf[index] = msg.value;
        emit Received(msg.sender, msg.value, index);
    }
}
